//! A sensor as people see it: its calibrated value and the name it goes by.
//!
//! Readings are stored as the probe measured them; the calibration offset people set
//! (`PUT /v1/sensors/{id}/settings`) is added wherever a temperature is served or decided on:
//! the sensor list, the readings series, reading events, the fusion (after the plausibility
//! checks, which judge what the probe said) and `/metrics`. They all go through
//! [`calibrated`], and name a sensor with [`display_name`], so no view can show another value
//! or another name than the rest.

/// A measured value as served and used: plus the sensor's calibration offset.
pub(crate) fn calibrated(measured: f64, offset_c: f64) -> f64 {
    measured + offset_c
}

/// The name a sensor goes by: the one people gave it, else its agent's alias, else its id.
pub(crate) fn display_name<'a>(
    id: &'a str,
    name: Option<&'a str>,
    alias: Option<&'a str>,
) -> &'a str {
    name.or(alias).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fall_back_and_offsets_add() {
        assert_eq!(display_name("28-a", Some("Hall"), Some("hall probe")), "Hall");
        assert_eq!(display_name("28-a", None, Some("hall probe")), "hall probe");
        assert_eq!(display_name("28-a", None, None), "28-a");
        assert_eq!(calibrated(20.0, -1.5), 18.5);
    }
}
