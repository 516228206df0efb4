//! Readings history, runs and analytics over the API.

use super::*;
