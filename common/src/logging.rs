//! Logging to stderr, the one path every log line of every Hearth binary takes.
//!
//! Values that reach a log often come from outside: a URL path, a sensor's alias, an error
//! message another service sent back, an mDNS instance name. A newline in one of them would
//! start a line that looks like a log line of its own (journald stores it as its own entry), and
//! an ESC would drive the terminal of whoever reads the log. So the field formatter here escapes
//! every control character in every message and value, whatever the call site wrote: no call
//! site can forget it. Field names and targets are identifiers from the code.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;

/// Initialise logging to stderr. `RUST_LOG` overrides `default_filter`: a level (`debug`), or
/// comma-separated `target=level` directives with an optional default level
/// (`warn,hearth_relay_agent=debug`).
///
/// The filter is tracing-subscriber's `Targets`, not `EnvFilter`: `EnvFilter` pulls in a regex
/// engine (several hundred KB of code, resident in every agent on a Pi Zero) for span-field
/// matching nobody uses here.
pub fn init_logging(default_filter: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let (subscriber, rejected) = subscriber(
        default_filter,
        std::env::var("RUST_LOG").ok(),
        std::io::stderr().is_terminal(),
        std::io::stderr,
    );
    // A second call (tests) keeps the first subscriber; that is fine.
    let _ = subscriber.try_init();
    if let Some((value, e)) = rejected {
        tracing::warn!(rust_log = %value, error = %e, "RUST_LOG not understood; using the default");
    }
    // Says which filter a person debugging got (shown only when it lets debug through).
    tracing::debug!("debug logging on");
}

/// What a rejected `RUST_LOG` was, and why.
type Rejected = Option<(String, tracing_subscriber::filter::ParseError)>;

/// The subscriber [`init_logging`] installs, writing to `writer`: `rust_log` (else
/// `default_filter`) decides what is shown; colour only when `ansi` (a terminal: journald,
/// files and test harnesses read plain text).
pub(crate) fn subscriber<W>(
    default_filter: &str,
    rust_log: Option<String>,
    ansi: bool,
    writer: W,
) -> (impl tracing::Subscriber + Send + Sync + 'static, Rejected)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt as _;

    let default: Targets = default_filter.parse().unwrap_or_default();
    let (filter, rejected) = match rust_log {
        Some(value) => match value.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (default, Some((value, e))),
        },
        None => (default, None),
    };
    let subscriber = tracing_subscriber::fmt()
        // The fmt subscriber's own level filter defaults to INFO and sits in front of `filter`:
        // without this, `RUST_LOG=debug` would show nothing below INFO. `filter` decides alone.
        .with_max_level(LevelFilter::TRACE)
        .fmt_fields(EscapedFields)
        .with_ansi(ansi)
        .with_writer(writer)
        .finish()
        .with(filter);
    (subscriber, rejected)
}

/// The field formatter: tracing-subscriber's default layout (`message name=value ...`, names in
/// italics on a terminal), with every message and value escaped by [`Escaped`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let ansi = writer.has_ansi_escapes();
        let mut visitor = Visitor { writer: &mut writer, ansi, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    ansi: bool,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_, '_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !std::mem::replace(&mut self.first, false) {
                self.writer.write_char(' ')?;
            }
            let name = field.name();
            if name != "message" {
                let name = name.strip_prefix("r#").unwrap_or(name);
                if self.ansi {
                    write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
                } else {
                    write!(self.writer, "{name}=")?;
                }
            }
            Escaped(&mut *self.writer).write_fmt(value)
        })();
    }
}

impl Visit for Visitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        struct Chain<'e>(&'e (dyn std::error::Error + 'static));
        impl fmt::Display for Chain<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)?;
                let mut source = self.0.source();
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
        }
        self.field(field, format_args!("{}", Chain(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // A message (and a `%value`) arrives as `fmt::Arguments`, whose Debug is its Display.
        self.field(field, format_args!("{value:?}"));
    }
}

/// A `fmt::Write` that passes text through with every character [`escape`] names escaped.
pub(crate) struct Escaped<W>(pub(crate) W);

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some((i, c)) = rest.char_indices().find(|(_, c)| needs_escape(*c)) {
            self.0.write_str(&rest[..i])?;
            escape(c, &mut self.0)?;
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// Characters that may not reach a log line as they are: C0 controls (newline, carriage
/// return, tab, ESC, ...), DEL, C1 controls (NEL among them), and the Unicode line and
/// paragraph separators, which some viewers break lines at.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `c` as Rust writes it in a string literal: `\n`, `\r`, `\t`, else `\u{1b}`.
fn escape(c: char, w: &mut impl fmt::Write) -> fmt::Result {
    match c {
        '\n' => w.write_str("\\n"),
        '\r' => w.write_str("\\r"),
        '\t' => w.write_str("\\t"),
        c => write!(w, "\\u{{{:x}}}", u32::from(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn escape_for_log(s: &str) -> String {
        let mut out = String::new();
        let _ = Escaped(&mut out).write_str(s);
        out
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_for_log("plain text, °C ü"), "plain text, °C ü");
        assert_eq!(escape_for_log("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape_for_log("\u{1b}[31mred\u{7}"), "\\u{1b}[31mred\\u{7}");
        assert_eq!(escape_for_log("\0\u{7f}"), "\\u{0}\\u{7f}");
        // C1: NEL (U+0085) ends a line for some readers; CSI (U+009B) starts a terminal escape.
        assert_eq!(escape_for_log("a\u{85}b\u{9b}c"), "a\\u{85}b\\u{9b}c");
        assert_eq!(escape_for_log("a\u{2028}b\u{2029}c"), "a\\u{2028}b\\u{2029}c");
        // Backslashes stay: Debug output (`"a\\nb"`) is already escaped once.
        assert_eq!(escape_for_log(r"C:\dir"), r"C:\dir");
    }

    /// A writer the tests read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            self.0.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
        }
    }

    fn capture(rust_log: Option<&str>, ansi: bool, f: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let (subscriber, _) = subscriber("info", rust_log.map(str::to_owned), ansi, buffer.clone());
        tracing::subscriber::with_default(subscriber, f);
        buffer.text()
    }

    #[test]
    fn a_forged_value_stays_on_its_line() {
        let forged = "fan\n2026-01-01T00:00:00.000000Z  INFO hearth_relay_agent::relays: switched \
                      output=heat state=On";
        for ansi in [false, true] {
            let text = capture(None, ansi, || {
                let span = tracing::info_span!("request", path = %forged);
                let _entered = span.enter();
                tracing::warn!(output = %forged, debug = ?forged, "refused {forged}\r\u{1b}[2J");
                tracing::info!(message = %forged);
                let error = std::io::Error::other(forged.to_owned());
                tracing::error!(error = &error as &(dyn std::error::Error + 'static), "failed");
            });
            assert_eq!(text.lines().count(), 3, "{text}");
            assert!(!text.contains('\r') && !text.contains("\u{1b}[2J"), "{text:?}");
            for line in text.lines() {
                assert!(line.contains("fan\\n2026-01-01T00:00:00"), "{line}");
            }
            assert!(text.contains("output=") && text.contains("refused fan\\n"), "{text}");
        }
    }

    #[test]
    fn the_layout_is_tracing_subscribers() {
        let text = capture(None, false, || {
            tracing::info!(host_id = %"hall", count = 3, text = "quoted", "relay agent registered");
        });
        assert!(
            text.trim_end()
                .ends_with("relay agent registered host_id=hall count=3 text=\"quoted\""),
            "{text}"
        );
    }

    #[test]
    fn rust_log_debug_shows_debug() {
        let text = capture(Some("debug"), false, || tracing::debug!("a debug line"));
        assert!(text.contains("a debug line"), "RUST_LOG=debug hid a debug line: {text:?}");
        let text = capture(Some("hearth_common=trace"), false, || tracing::trace!("a trace line"));
        assert!(text.contains("a trace line"), "{text:?}");
        let text = capture(None, false, || tracing::debug!("a debug line"));
        assert!(text.is_empty(), "the default filter is info: {text:?}");
        let text = capture(Some("warn"), false, || tracing::info!("an info line"));
        assert!(text.is_empty(), "{text:?}");
    }
}
