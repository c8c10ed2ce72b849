//! The logger: env_logger with heimdall's line formats (`log.format`).
//!
//! - under journald (`$JOURNAL_STREAM` names the device and inode of our
//!   stderr), each line starts with its syslog priority (`<3>` error to
//!   `<7>` debug and trace), which journald strips and files the line
//!   under: `journalctl -p warning` then shows warnings and errors only;
//! - `text` elsewhere: a timestamp, the level, the module, the message;
//! - `json`: one object per line (`ts`, `level`, `target`, `msg`).
//!
//! The logger itself passes every level; the global maximum
//! (`log::set_max_level`) is `log.level`, so `heimdall ctl log-level`
//! can raise or lower it while the server runs. With `RUST_LOG` set, its
//! filter applies as well and the control can only lower the level.

use std::io::Write as _;

use heimdall_config::{LogConfig, LogFormat};
use log::{Level, LevelFilter};

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `<N>target: message`, for journald.
    Journal,
    /// `[timestamp LEVEL target] message`.
    Text,
    /// One JSON object.
    Json,
}

/// The style for `format` in this process's environment.
pub(crate) fn style(format: LogFormat) -> Style {
    match format {
        LogFormat::Json => Style::Json,
        LogFormat::Text if stderr_is_journal() => Style::Journal,
        LogFormat::Text => Style::Text,
    }
}

/// Whether stderr is the journal stream systemd connected: the
/// `$JOURNAL_STREAM` device and inode (`DEV:INODE`) are stderr's. A child
/// that inherited the variable but writes elsewhere gets plain text.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    journal_stream_matches(&stream.to_string_lossy(), meta.dev(), meta.ino())
}

fn journal_stream_matches(value: &str, dev: u64, ino: u64) -> bool {
    let Some((want_dev, want_ino)) = value.split_once(':') else {
        return false;
    };
    want_dev.parse() == Ok(dev) && want_ino.parse() == Ok(ino)
}

/// The syslog priority of a level (RFC 5424): error 3, warning 4,
/// informational 6, debug 7.
pub(crate) fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One line (without its newline) in `style`; `timestamp` is RFC 3339.
pub(crate) fn format_line(
    style: Style,
    timestamp: &str,
    level: Level,
    target: &str,
    message: &str,
) -> String {
    match style {
        Style::Journal => format!(
            "<{}>{target}: {}",
            syslog_priority(level),
            // journald would file a second line at its default priority.
            message.replace('\n', " ")
        ),
        Style::Text => format!("[{timestamp} {level:<5} {target}] {message}"),
        Style::Json => serde_json::json!({
            "ts": timestamp,
            "level": level.as_str().to_ascii_lowercase(),
            "target": target,
            "msg": message,
        })
        .to_string(),
    }
}

/// The level filter for a configured or requested level name.
pub(crate) fn level_filter(level: &str) -> LevelFilter {
    level.parse().unwrap_or(LevelFilter::Info)
}

/// Install the logger for `config`.
pub(crate) fn init(config: &LogConfig) {
    let style = style(config.format);
    let mut builder = env_logger::Builder::new();
    let rust_log = std::env::var_os("RUST_LOG").is_some();
    if rust_log {
        builder.parse_env("RUST_LOG");
    } else {
        builder.filter_level(LevelFilter::Trace);
    }
    builder.format(move |buf, record| {
        let timestamp = buf.timestamp().to_string();
        let line = format_line(
            style,
            &timestamp,
            record.level(),
            record.target(),
            &record.args().to_string(),
        );
        writeln!(buf, "{line}")
    });
    builder.init();
    if !rust_log {
        log::set_max_level(level_filter(config.level.as_str()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn journal_lines_start_with_the_syslog_priority() {
        let line = |level| format_line(Style::Journal, "t", level, "heimdall", "a\nb");
        assert_eq!(line(Level::Error), "<3>heimdall: a b");
        assert_eq!(line(Level::Warn), "<4>heimdall: a b");
        assert_eq!(line(Level::Info), "<6>heimdall: a b");
        assert_eq!(line(Level::Debug), "<7>heimdall: a b");
        assert_eq!(line(Level::Trace), "<7>heimdall: a b");
    }

    #[test]
    fn text_lines_have_the_time_level_and_target() {
        let line = format_line(
            Style::Text,
            "2026-01-01T00:00:00Z",
            Level::Warn,
            "heimdall_server::reload",
            "reload failed",
        );
        assert_eq!(
            line,
            "[2026-01-01T00:00:00Z WARN  heimdall_server::reload] reload failed"
        );
    }

    #[test]
    fn json_lines_are_one_object_each() {
        let line = format_line(
            Style::Json,
            "2026-01-01T00:00:00Z",
            Level::Info,
            "heimdall",
            "say \"hi\"\nthere",
        );
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["ts"], "2026-01-01T00:00:00Z");
        assert_eq!(value["level"], "info");
        assert_eq!(value["target"], "heimdall");
        assert_eq!(value["msg"], "say \"hi\"\nthere");
    }

    #[test]
    fn the_journal_is_recognised_by_device_and_inode() {
        assert!(journal_stream_matches("8:1234", 8, 1234));
        assert!(!journal_stream_matches("8:1234", 8, 1235));
        assert!(!journal_stream_matches("8", 8, 1234));
        assert!(!journal_stream_matches("", 8, 1234));
        assert_eq!(style(LogFormat::Json), Style::Json);
    }
}
