//! Storage faults as an ordinary state: which errors are faults of the storage (a full disk, a
//! filesystem turned read-only, an I/O error, a database that cannot be opened) rather than of
//! a request, and what must be true of the data dir before the storage counts as recovered.
//!
//! The state itself lives in [`super::Store`]: every query that fails with a fault turns it
//! degraded, and only the recovery probe (a fresh connection pool, the migrations, a committed
//! write, room on the filesystem) turns it healthy again.

use std::path::Path;
use std::time::Duration;

use hearth_proto::Timestamp;
use sqlx::postgres::PgDatabaseError;

/// Free space the database's filesystem must have before storage counts as recovered from a
/// fault. A disk that has just been full often takes one small write again (the WAL reuses
/// the space it already has) and fails on the next batch: without a reserve, the state would
/// flap between healthy and degraded every probe while nobody freed anything.
pub(crate) const RESERVE_BYTES: u64 = 4 << 20;

/// Below this much free space a healthy store turns degraded before a write fails: SQLite
/// may go on writing into space its WAL already has for a while, and then fail any batch;
/// the state says so as soon as the disk is full, not at the first unlucky batch.
pub(crate) const FULL_BELOW_BYTES: u64 = 1 << 20;

/// How often a healthy store checks its filesystem, and a degraded one tries to reopen the
/// database.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Whether the engine can store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StorageHealth {
    /// Writes commit.
    Healthy,
    /// Writes fail (or cannot be trusted to commit) since `since`, because of `reason`.
    Degraded { reason: String, since: Timestamp },
}

impl StorageHealth {
    pub(crate) fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy)
    }
}

/// The last recovery from a storage fault, for `/v1/status`: what happened, and what the
/// recovery wrote again of what had been confirmed just before it (`acked.rs`, `changes.rs`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recovery {
    /// The fault, as the state said it.
    pub(crate) fault: String,
    /// When the fault was found.
    pub(crate) since: Timestamp,
    /// When the store was healthy again.
    pub(crate) at: Timestamp,
    /// Readings acknowledged before the fault, written again.
    pub(crate) readings: usize,
    /// Changes confirmed before the fault, written again.
    pub(crate) changes: usize,
}

/// SQLite's primary result codes that say the storage failed, not the statement.
const SQLITE_BUSY: i64 = 5;
const SQLITE_NOMEM: i64 = 7;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_PROTOCOL: i64 = 15;
const SQLITE_NOTADB: i64 = 26;

/// What a storage fault is, in words for the status page; `None` for errors that are not the
/// storage's (a constraint, a malformed row, a pool closed on purpose): those fail their
/// request and change no state.
pub(crate) fn fault_reason(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.try_downcast_ref::<PgDatabaseError>().is_some() => {
            pg_fault(db.code().as_deref().unwrap_or(""), db.message())
        }
        sqlx::Error::Database(db) => {
            // sqlx reports SQLite's extended result code; its low byte is the primary code.
            let code = db.code().and_then(|c| c.parse::<i64>().ok())?;
            let what = match code & 0xff {
                SQLITE_FULL => "the disk is full",
                SQLITE_READONLY => "the database is read-only",
                SQLITE_IOERR => "the disk reports an I/O error",
                SQLITE_CANTOPEN => "the database file cannot be opened",
                SQLITE_CORRUPT | SQLITE_NOTADB => "the database file is damaged",
                SQLITE_BUSY => "the database stayed locked",
                SQLITE_PROTOCOL => "the database's lock protocol failed",
                SQLITE_NOMEM => "SQLite ran out of memory",
                _ => return None,
            };
            Some(format!("{what} ({}, SQLite code {code})", db.message()))
        }
        sqlx::Error::Io(io) => Some(format!("the database connection failed: {io}")),
        sqlx::Error::PoolTimedOut => Some("no database connection could be had in time".into()),
        sqlx::Error::WorkerCrashed => Some("the database connection's worker stopped".into()),
        _ => None,
    }
}

/// A PostgreSQL error that says the server or its storage failed, by SQLSTATE class: the
/// connection (08), the server shutting down or cancelling (57P), its resources (53: disk
/// full, out of memory, too many connections), the system (58), data corruption (XX001/2).
/// A constraint or a bad statement is the request's.
fn pg_fault(code: &str, message: &str) -> Option<String> {
    let what = match code {
        c if c.starts_with("08") => "the connection to the PostgreSQL server failed",
        "57P01" | "57P02" | "57P03" => "the PostgreSQL server is shutting down or starting",
        "53100" => "the PostgreSQL server's disk is full",
        c if c.starts_with("53") => "the PostgreSQL server is out of resources",
        c if c.starts_with("58") => "the PostgreSQL server reports a system error",
        "XX001" | "XX002" => "the PostgreSQL server reports damaged data",
        _ => return None,
    };
    Some(format!("{what} ({message}, SQLSTATE {code})"))
}

/// Why the filesystem holding `file` cannot take writes now, if it cannot: mounted read-only,
/// or less than `min_free` bytes free for unprivileged users (the engine runs as one).
pub(crate) fn filesystem_problem(file: &Path, min_free: u64) -> Option<String> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fs = match rustix::fs::statvfs(dir) {
        Ok(fs) => fs,
        Err(e) => return Some(format!("cannot inspect the filesystem of {}: {e}", dir.display())),
    };
    if fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Some(format!("the filesystem of {} is mounted read-only", dir.display()));
    }
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    if free < min_free {
        return Some(format!(
            "the disk is full: {} KiB free on the filesystem of {}, {} KiB needed",
            free / 1024,
            dir.display(),
            min_free / 1024
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_are_not_storage_faults() {
        assert_eq!(fault_reason(&sqlx::Error::RowNotFound), None);
        assert_eq!(fault_reason(&sqlx::Error::PoolClosed), None);
        assert!(fault_reason(&sqlx::Error::PoolTimedOut).is_some());
        assert!(pg_fault("23505", "duplicate key").is_none());
        assert!(pg_fault("42P01", "no such table").is_none());
        assert!(pg_fault("53100", "no space").is_some_and(|r| r.contains("disk is full")));
        assert!(pg_fault("57P01", "terminating").is_some());
        assert!(pg_fault("08006", "gone").is_some());
    }

    #[test]
    fn a_roomy_writable_directory_has_no_problem() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        // The machine running the tests has more than 4 MiB free in its temp dir.
        assert_eq!(filesystem_problem(&dir.path().join("hearth.db"), RESERVE_BYTES), None);
        let full = filesystem_problem(&dir.path().join("hearth.db"), u64::MAX);
        assert!(full.is_some_and(|m| m.contains("the disk is full")));
        let missing = filesystem_problem(&dir.path().join("nowhere/hearth.db"), RESERVE_BYTES);
        assert!(missing.is_some_and(|m| m.contains("cannot inspect")));
        Ok(())
    }
}
