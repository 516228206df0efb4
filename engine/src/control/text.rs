//! How numbers read in reason texts, the same in every layer of the decision.

/// A temperature in reason texts: one decimal, halves rounded away from zero. The dashboard
/// rounds the same way (`fmtTemp` in `web-ui/assets/api.js`), so the temperature it shows and
/// the one the reason names agree: a DS18B20 reads in sixteenths, and 17.25 must not be 17.2
/// here and 17.3 there.
pub(crate) fn temp(v: f64) -> String {
    // `+ 0.0` turns −0.0 into 0.0.
    format!("{:.1}", (v * 10.0).round() / 10.0 + 0.0)
}

/// A small parameter (hysteresis, rates) in reason texts: up to two decimals, no trailing
/// zeros, so 0.25 stays 0.25 and 0.3 is not 0.30.
pub(crate) fn small(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// A duration in reason texts: `40 s`, `14 min`, `2 h 05 min`. Minutes round up, so "1 min
/// left" is never shown when 70 s are.
pub(crate) fn span(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 120 * 60 {
        format!("{} min", (secs + 59) / 60)
    } else {
        let min = (secs + 59) / 60;
        format!("{} h {:02} min", min / 60, min % 60)
    }
}
