//! The platform mix through the service: the engine computes it over the workspace's index;
//! this module checks the request against the workspace.

use super::{Trellis, no_strategy};
use crate::domain::{Millis, WorkspaceId};
use crate::engine::mix::PlatformMix;
use crate::error::CoreResult;

impl Trellis {
    /// Which platforms carry the strategic conversations active since `since` (all when unset),
    /// whom they reach, and the recommended split of effort, with the reasons.
    pub fn recommend_platform_mix(
        &self,
        workspace: &WorkspaceId,
        since: Option<Millis>,
    ) -> CoreResult<PlatformMix> {
        let engine = self.engine(workspace)?;
        let engine = Self::read(&engine)?;
        engine.strategy().ok_or_else(|| no_strategy(workspace))?;
        Ok(engine.platform_mix(since))
    }
}
