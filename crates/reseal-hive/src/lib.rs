//! reseal-hive (in progress).
