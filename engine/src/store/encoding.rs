//! How a reading's value is stored (migration 0017): the shortest exact form on SQLite, the
//! value itself on PostgreSQL; and the rollups' units.
//!
//! SQLite writes an integer in 1 to 8 bytes by its size and a REAL in 8, and a column without
//! a declared type keeps what it is given. A DS18B20 reports sixteenths of a degree, and a
//! value with a calibration offset of a few decimals is a whole number of ten-thousandths: so
//! a value is stored as an integer whose lowest bit says which (`2k`: k/16 °C, 2 bytes for any
//! room's temperature; `2k+1`: k/10000 °C, 3 bytes), and as a REAL only when neither is exact.
//! The `readings` view of the migration turns it back into °C: both divisions are of exact
//! integers, so each gives back exactly the value written (checked here before choosing).

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Postgres, Sqlite};

/// Values at least this large (°C) are stored as they are: their integer forms would not stay
/// exact in a double.
const EXACT_BELOW: f64 = 1_048_576.0;

/// The rollups' sum, min and max are stored in units of `1 / ROLLUP_SCALE` °C (the views of
/// migration 0017 divide them back).
pub(super) const ROLLUP_SCALE: f64 = 10_000.0;

/// The integer form of `v` on SQLite, when one is exact.
pub(super) fn packed(v: f64) -> Option<i64> {
    if !v.is_finite() || v.abs() >= EXACT_BELOW {
        return None;
    }
    let sixteenths = v * 16.0;
    if sixteenths == sixteenths.round() {
        // `as` is exact: the value is whole and below 2^24.
        return Some(sixteenths as i64 * 2);
    }
    let q = (v * 10_000.0).round();
    (q / 10_000.0 == v).then(|| q as i64 * 2 + 1)
}

/// `v` in the rollups' units: rounded to a whole number when `v` has at most four decimals (so
/// sums of such values stay exact, and SQLite writes them as integers).
pub(super) fn scaled(v: f64) -> f64 {
    let q = (v * ROLLUP_SCALE).round();
    if q / ROLLUP_SCALE == v { q } else { v * ROLLUP_SCALE }
}

/// A raw reading's value as bound on insert: [`packed`] when it can be on SQLite, else itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RawValue(pub(super) Option<f64>);

impl sqlx::Type<Sqlite> for RawValue {
    fn type_info() -> <Sqlite as sqlx::Database>::TypeInfo {
        <f64 as sqlx::Type<Sqlite>>::type_info()
    }
}

impl sqlx::Encode<'_, Sqlite> for RawValue {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        match self.0 {
            None => Ok(IsNull::Yes),
            Some(v) => match packed(v) {
                Some(i) => <i64 as sqlx::Encode<'_, Sqlite>>::encode_by_ref(&i, buf),
                None => <f64 as sqlx::Encode<'_, Sqlite>>::encode_by_ref(&v, buf),
            },
        }
    }
}

impl sqlx::Type<Postgres> for RawValue {
    fn type_info() -> <Postgres as sqlx::Database>::TypeInfo {
        <f64 as sqlx::Type<Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, Postgres> for RawValue {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <Option<f64> as sqlx::Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the `readings` view of migration 0017 computes from a stored integer.
    fn unpacked(i: i64) -> f64 {
        if i & 1 == 0 { i as f64 / 32.0 } else { (i - 1) as f64 / 20_000.0 }
    }

    #[test]
    fn sixteenths_take_the_short_form_and_decimals_the_other() {
        assert_eq!(packed(21.0625), Some(674));
        assert_eq!(packed(-10.5), Some(-336));
        assert_eq!(packed(21.37), Some(427_401));
        assert_eq!(packed(-21.37), Some(-427_399));
        assert_eq!(packed(1.0 / 3.0), None);
        assert_eq!(packed(f64::NAN), None);
        assert_eq!(packed(1e308), None);
    }

    #[test]
    fn every_packed_value_reads_back_exactly() {
        // A sweep of values with up to six decimals across the readings' range: whatever form
        // each takes, it reads back as the same double.
        let mut n = 0;
        for i in (-1_250_000..1_250_000).step_by(7) {
            for v in [f64::from(i) / 10_000.0, f64::from(i) / 1_000_000.0, f64::from(i) / 16.0] {
                if let Some(p) = packed(v) {
                    assert_eq!(unpacked(p).to_bits(), v.to_bits(), "{v}");
                    n += 1;
                }
            }
        }
        assert!(n > 500_000);
    }

    #[test]
    fn scaled_values_are_whole_when_exact() {
        assert_eq!(scaled(21.37), 213_700.0);
        assert_eq!(scaled(21.0625), 210_625.0);
        assert!(scaled(1.0 / 3.0).fract() != 0.0);
    }
}
