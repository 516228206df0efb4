//! The two databases the store speaks: SQLite (the embedded default) and PostgreSQL.
//!
//! One text per query serves both. Every statement is written once, with numbered
//! placeholders (`$1`, which sqlx's SQLite driver takes as well), in the SQL both dialects share
//! (`ON CONFLICT … DO UPDATE`, `IS NOT DISTINCT FROM`, `CASE` where SQLite would use its
//! two-argument `MAX`); the few statements whose text must differ say so with
//! [`Pool::backend`]. The Rust around a query is written once too: [`on_pool!`] and
//! [`on_conn!`] expand their body once per backend, so the same code is compiled for
//! `sqlx::Sqlite` and `sqlx::Postgres`. (Not `sqlx::Any`, whose lowest common types cannot say
//! BIGINT against INTEGER or BOOLEAN against 0/1; and not functions generic over the database,
//! whose bounds every caller would have to repeat.)

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};

/// Connections per pool: readers go on while the ingest writer commits.
pub(super) const POOL_SIZE: u32 = 4;

/// Prepared statements each connection keeps (sqlx's default is 100). A multi-row INSERT or
/// upsert has one text per row count, so a burst of write batches of many sizes filled every
/// connection's cache with a hundred of them, each up to ~50 KB of compiled program on SQLite
/// (~30 KB of SQL text on PostgreSQL): after a burst the SQLite engine held 25 MB of them (of
/// its 28 MB of live heap, measured with heaptrack), for good, as a connection lives as long as
/// it is used. The engine's fixed queries are a few per pass; one evicted is prepared again in
/// microseconds. `cargo xtask bench ingest` shows the memory after a burst.
pub(super) const STATEMENT_CACHE: usize = 16;

/// Which database a store speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The database a URL names, by its scheme.
    pub(crate) fn of_url(url: &str) -> Self {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

/// A connection pool of either backend; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// How to connect, per backend (what a recovery opens a fresh pool with).
#[derive(Debug, Clone)]
pub(crate) enum Options {
    Sqlite(SqliteConnectOptions),
    /// With the site's schema, which `search_path` names (every table lives in it).
    Postgres(PgConnectOptions, String),
}

impl Options {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(..) => Backend::Postgres,
        }
    }

    /// A pool that connects on first use and closes every connection after its query: for a
    /// degraded store, so that nothing is kept open from before the fault (see `mod.rs`).
    pub(crate) fn transient_pool(&self) -> Pool {
        match self {
            Self::Sqlite(o) => Pool::Sqlite(
                sqlite_pool_options()
                    .after_release(|_, _| Box::pin(async { Ok(false) }))
                    .connect_lazy_with(o.clone()),
            ),
            Self::Postgres(o, _) => Pool::Postgres(
                pg_pool_options()
                    .after_release(|_, _| Box::pin(async { Ok(false) }))
                    .connect_lazy_with(o.clone()),
            ),
        }
    }
}

/// How long a query waits for a PostgreSQL connection before the server counts as gone (the
/// store turns degraded, ingest answers 503): long enough for a busy server, short enough that
/// agents are told to queue before their own requests time out.
pub(crate) const PG_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A connection idle for longer than this is pinged before it is handed out; one used more
/// recently is not.
///
/// sqlx pings every connection it hands out by default: on PostgreSQL one more round trip per
/// transaction, on SQLite one more hop to the connection's thread. Under load (a write every
/// few milliseconds) that ping was one of the six round trips of every ingest batch, and it can
/// only find a server gone since the connection's last use: a connection used milliseconds ago
/// that fails is a fault like any other (the store turns degraded and recovers, `mod.rs`). A
/// connection left idle, across a possible server restart, is still tested, and replaced
/// without a fault when it is dead.
pub(super) const PING_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) fn pg_pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(PG_ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// The pool options of SQLite: as [`pg_pool_options`], a connection is pinged only after
/// [`PING_IDLE_AFTER`] idle.
pub(crate) fn sqlite_pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new().max_connections(POOL_SIZE).test_before_acquire(false).before_acquire(
        |conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        },
    )
}

impl Pool {
    /// Free what each idle SQLite connection caches back to the allocator: its page cache (up
    /// to 2 MB) and its prepared statements (up to [`STATEMENT_CACHE`] compiled programs, each
    /// up to ~50 KB; prepared again in microseconds at their next use). The connections stay
    /// open. PostgreSQL's caches live in its server.
    pub(crate) async fn release_memory(&self) {
        if let Self::Sqlite(pool) = self {
            // Held until every idle one was asked, so that none is asked twice.
            let mut asked = Vec::new();
            while let Some(mut conn) = pool.try_acquire() {
                // Only memory is at stake: a connection that cannot shrink keeps its cache.
                let _ = sqlx::Connection::clear_cached_statements(&mut *conn).await;
                let _ = sqlx::query("PRAGMA shrink_memory").execute(&mut *conn).await;
                asked.push(conn);
            }
        }
    }

    /// Wait for the connections in use to come back, then close every one.
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

/// `on_pool!(pool, |p| body)`: `body` with `p` bound to the backend's own pool (`&SqlitePool`
/// or `&PgPool`), compiled once per backend.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::store::db::Pool::Sqlite($p) => $body,
            $crate::store::db::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// `on_conn!(tx.conn()?, |c| body)`: `body` with `c` bound to the backend's own connection
/// (`&mut SqliteConnection` or `&mut PgConnection`), compiled once per backend.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::db::Conn::Sqlite($c) => $body,
            $crate::store::db::Conn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_conn;

/// The connection of a [`WriteTx`], per backend.
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// A write transaction on a connection of its own.
///
/// SQLite: begun with `BEGIN IMMEDIATE` (the write lock up front: no deadlock upgrading a
/// read); a transaction that does not commit closes its connection instead of returning it to
/// the pool. Why not sqlx's `Transaction` there: after a failed COMMIT (SQLITE_FULL,
/// SQLITE_IOERR) SQLite has already rolled back, sqlx's ROLLBACK then fails and its
/// transaction depth stays at 1; the connection's next "transaction" becomes a SAVEPOINT whose
/// RELEASE commits nothing, and whose failure leaves a real transaction open with the WAL write
/// lock. Acknowledged writes that never reach the file, and a database locked until restart:
/// the only safe connection after a failure is a closed one (closing rolls back whatever is
/// open).
///
/// PostgreSQL: sqlx's transaction. A failed COMMIT there is a rolled-back transaction on a
/// connection that works (or a broken connection the pool drops), and writers do not lock
/// each other out up front: the engine's writes are upserts that meet on their keys.
pub(crate) enum WriteTx {
    Sqlite(Option<PoolConnection<Sqlite>>),
    Postgres(Option<sqlx::Transaction<'static, Postgres>>),
}

impl WriteTx {
    pub(crate) async fn begin(pool: &Pool) -> Result<Self, sqlx::Error> {
        match pool {
            Pool::Sqlite(pool) => {
                let mut tx = Self::Sqlite(Some(pool.acquire().await?));
                on_conn!(tx.conn()?, |c| sqlx::query("BEGIN IMMEDIATE")
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected()))?;
                Ok(tx)
            }
            Pool::Postgres(pool) => Ok(Self::Postgres(Some(pool.begin().await?))),
        }
    }

    /// Its connection, for one statement.
    pub(crate) fn conn(&mut self) -> Result<Conn<'_>, sqlx::Error> {
        match self {
            Self::Sqlite(c) => c.as_deref_mut().map(Conn::Sqlite),
            Self::Postgres(t) => t.as_deref_mut().map(Conn::Postgres),
        }
        .ok_or(sqlx::Error::PoolClosed)
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        match &mut self {
            Self::Sqlite(conn) => {
                let c = conn.as_deref_mut().ok_or(sqlx::Error::PoolClosed)?;
                sqlx::query("COMMIT").execute(c).await.map(|r| r.rows_affected())?;
                // Committed: the connection goes back to the pool.
                *conn = None;
                Ok(())
            }
            Self::Postgres(tx) => match tx.take() {
                Some(tx) => tx.commit().await,
                None => Err(sqlx::Error::PoolClosed),
            },
        }
    }
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = match self {
            Self::Sqlite(c) => c.is_some(),
            Self::Postgres(t) => t.is_some(),
        };
        f.debug_struct("WriteTx").field("backend", &self.backend()).field("open", &open).finish()
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if let Self::Sqlite(conn) = self
            && let Some(conn) = conn.take()
        {
            // Out of the pool (which opens a replacement when needed) and closed.
            drop(conn.detach());
        }
        // A PostgreSQL transaction dropped uncommitted is rolled back by sqlx.
    }
}

/// `url` with its password replaced, for messages and logs (a PostgreSQL URL may carry one).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL: nothing of it is shown but its scheme, in case it holds a secret.
        return format!("{}:…", url.split(':').next().unwrap_or(""));
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// The schema a URL's `options=-c search_path=…` names, if it names one.
pub(crate) fn pg_schema_of(options: &PgConnectOptions) -> Option<String> {
    // `-c search_path=X` or `-csearch_path=X`.
    options
        .get_options()?
        .split_whitespace()
        .map(|o| o.strip_prefix("-c").unwrap_or(o))
        .find_map(|o| o.strip_prefix("search_path="))
        .map(|s| s.trim_matches('"').to_owned())
}

/// The longest schema name PostgreSQL keeps (NAMEDATALEN − 1).
const MAX_SCHEMA_CHARS: usize = 63;

/// A schema name the engine can quote safely and that means one schema: lowercase letters,
/// digits and `_`, starting with a letter or `_`.
pub(crate) fn check_pg_schema(schema: &str) -> anyhow::Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_CHARS
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && !schema.starts_with("pg_");
    anyhow::ensure!(
        ok,
        "the PostgreSQL schema {schema:?} cannot hold a site: use 1 to {MAX_SCHEMA_CHARS} \
         lowercase letters, digits and _, not starting with a digit or pg_ \
         (options=-c search_path=NAME in the database URL)"
    );
    Ok(())
}

/// What to do about a PostgreSQL server that could not be used at start, from why; None when
/// the reason says it already.
pub(crate) fn pg_fix(reason: &str) -> Option<&'static str> {
    let r = reason.to_ascii_lowercase();
    Some(if r.contains("password") || r.contains("authentication") || r.contains("28p01") {
        "Check the user and password in the database URL (keep the password in the engine's \
         environment file, see \"PostgreSQL\" in the README)."
    } else if r.contains("does not exist") || r.contains("3d000") {
        "Create the database first (createdb -O USER NAME), or name an existing one in the URL."
    } else if r.contains("permission denied") || r.contains("42501") {
        "Grant the user CREATE on the database (the engine makes its schema and tables)."
    } else if r.contains("connect")
        || r.contains("refused")
        || r.contains("no such file")
        || r.contains("timed out")
        || r.contains("connection")
    {
        "Is the server running and reachable at the URL's host and port (systemctl status \
         postgresql)? The engine's unit starts after postgresql.service when both are on one \
         machine."
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows() {
        assert_eq!(
            redact_url("postgres://hearth:s3cret@db.lan:5432/hearth?sslmode=require"),
            "postgres://hearth:***@db.lan:5432/hearth?sslmode=require"
        );
        assert_eq!(redact_url("postgres://hearth@db/h"), "postgres://hearth@db/h");
        assert_eq!(redact_url("postgres:///h?host=/run/pg"), "postgres:///h?host=/run/pg");
        assert_eq!(redact_url("postgres:u:p@x"), "postgres:…");
        assert_eq!(redact_url("postgres://a:b:c@h/d"), "postgres://a:***@h/d");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_pg_schema("hearth").is_ok());
        assert!(check_pg_schema("site_2").is_ok());
        for bad in ["", "Hearth", "a-b", "2nd", "pg_x", "a\"b", &"x".repeat(64)] {
            assert!(check_pg_schema(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_search_path_in_the_url_names_the_schema() -> anyhow::Result<()> {
        use std::str::FromStr;
        let o = PgConnectOptions::from_str("postgres://u@h/d?options=-c%20search_path%3Dsite_b")?;
        assert_eq!(pg_schema_of(&o).as_deref(), Some("site_b"));
        let o = PgConnectOptions::from_str("postgres://u@h/d")?;
        assert_eq!(pg_schema_of(&o), None);
        Ok(())
    }
}
