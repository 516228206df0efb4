//! The engine's own control settings and decision: what [`super::decide`] takes and gives,
//! what the loop keeps and what the store records. They are converted to and from the wire
//! types of `hearth_proto::control` at the API edge (`api/control.rs`) and when a decision is
//! published as an event (`controller.rs`), so the stored and internal forms can change
//! without changing the contract, and the other way round. Their serde form is the stored
//! one (`store/format.rs` adds its version).

use hearth_proto::Timestamp;
use hearth_proto::control::{
    ControlSettings, Mode, Outlook, ReasonCode, SensorInput, SensorSource,
};
use hearth_proto::schedules::RuleRef;
use serde::{Deserialize, Serialize};

/// The control settings in force (the contract's `ControlSettings` documents each field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Settings {
    pub(crate) mode: Mode,
    pub(crate) algorithm: String,
    pub(crate) params: serde_json::Value,
    pub(crate) frost_floor_c: f64,
    pub(crate) max_ceiling_c: f64,
    pub(crate) min_on_s: u32,
    pub(crate) min_off_s: u32,
    pub(crate) changeover_s: u32,
    pub(crate) auto_deadband_c: f64,
    pub(crate) outlier_c: f64,
    pub(crate) sensor_loss_duty_pct: u32,
}

impl Default for Settings {
    /// The contract's defaults (one place says them: the schema shows them too), converted
    /// like every request's settings (`api/control.rs`).
    fn default() -> Self {
        ControlSettings::default().into()
    }
}

/// One decision of the loop (the contract's `Decision` documents each field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Decision {
    pub(crate) at: Timestamp,
    pub(crate) mode: Mode,
    pub(crate) algorithm: String,
    pub(crate) heat: bool,
    pub(crate) cool: bool,
    pub(crate) effective_temp_c: Option<f64>,
    pub(crate) heat_setpoint_c: f64,
    pub(crate) cool_setpoint_c: f64,
    pub(crate) rule: RuleRef,
    pub(crate) reason_code: ReasonCode,
    pub(crate) reason: String,
    pub(crate) sensor_source: SensorSource,
    pub(crate) sensors: Vec<SensorInput>,
    pub(crate) expected_at: Option<Timestamp>,
    pub(crate) outlook: Option<Outlook>,
    /// Absent from decisions stored before it existed.
    #[serde(default)]
    pub(crate) held_until: Option<Timestamp>,
}
