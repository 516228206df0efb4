//! Schedules, overrides and the timeline over the API.

use super::*;
