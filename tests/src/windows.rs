//! Windows-like fixture images from a declarative description (in progress).
