//! Open policy: whether a volume may be written is decided when it is opened for writing
//! ([`Volume::open_writable`]), not by each caller. The volume state ([`crate::state`]) is read
//! through the same engine volume that is then handed back for writing, so the volume is opened
//! once.

use reseal_disk::Device;

use crate::browse::BrowseError;
use crate::state::{UnsafeState, VolumeState};
use crate::Volume;

/// What the caller allows when opening a volume for writing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WritePolicy {
    /// Write even though the volume is dirty, hibernated, left by Fast Startup or has a
    /// `$LogFile` to replay (the user's override flag, e.g. `--force`).
    pub force_unsafe_state: bool,
}

impl WritePolicy {
    /// Refuse every unsafe state.
    pub const STRICT: WritePolicy = WritePolicy {
        force_unsafe_state: false,
    };
    /// Write whatever the volume state (the caller warns).
    pub const FORCE: WritePolicy = WritePolicy {
        force_unsafe_state: true,
    };
}

/// A volume opened for writing, with the state that was checked.
#[derive(Debug)]
pub struct Writable<D: Device> {
    /// The engine volume, ready for changes.
    pub volume: Volume<D>,
    /// The state read at open.
    pub state: VolumeState,
    /// The unsafe state the policy overrode, if any (the caller should warn about it).
    pub overridden: Option<UnsafeState>,
}

/// Why [`Volume::open_writable`] gave no volume.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenWritableError {
    /// The volume is in a state reseal does not write to, and the policy does not override it.
    /// `message` says what to do; the caller names its override flag.
    #[error("{message}")]
    Refused {
        /// The state that refused the write.
        state: UnsafeState,
        /// The whole state, for reports.
        volume: Box<VolumeState>,
        /// The advice for the user ([`VolumeState::refusal`]).
        message: String,
    },
    /// The volume could not be opened or its state could not be read.
    #[error(transparent)]
    Open(#[from] BrowseError),
}

impl<D: Device> Volume<D> {
    /// Open the NTFS volume on `dev` for writing under `policy`: the boot sector and the engine
    /// are set up once, the volume state (dirty flag, `$LogFile`, `hiberfil.sys`) is read through
    /// them, and an unsafe state is refused unless the policy overrides it.
    ///
    /// # Errors
    /// [`OpenWritableError::Refused`] for an unsafe state the policy does not override;
    /// [`OpenWritableError::Open`] when the volume cannot be opened or its state read.
    pub fn open_writable(
        dev: D,
        policy: WritePolicy,
    ) -> std::result::Result<Writable<D>, OpenWritableError> {
        let mut browse = crate::browse::Volume::open(dev)?;
        let state = VolumeState::from_volume(&mut browse)?;
        let overridden = state.unsafe_state();
        if let Some(unsafe_state) = &overridden {
            if !policy.force_unsafe_state {
                let message = state.refusal().unwrap_or_else(|| unsafe_state.detail());
                return Err(OpenWritableError::Refused {
                    state: unsafe_state.clone(),
                    volume: Box::new(state),
                    message,
                });
            }
        }
        Ok(Writable {
            volume: browse.into_engine(),
            state,
            overridden,
        })
    }
}
