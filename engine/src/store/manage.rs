//! Agents managed from the engine: the desired settings per host (one JSON document, its
//! revision bumped by every change), what each agent reported applying, and the remote
//! commands with their state and result.
//!
//! The documents are stored as the proto types' JSON: the engine never interprets an agent's
//! settings beyond validating the request, the agent applies them within its local limits.

use hearth_proto::agents::{AgentKind, KeyRole};
use hearth_proto::manage::{
    AgentSettings, AppliedSettings, AppliedState, COMMAND_EXPIRY_S, Command, CommandKind,
    CommandReport, CommandState, Refusal,
};

use super::changes::Change;
use super::db::{WriteTx, on_conn, on_pool};
use super::{Store, enum_str, from_millis, str_enum};

/// The desired settings of a host as stored.
#[derive(Debug, Clone, Default)]
pub(crate) struct DesiredRow {
    pub(crate) revision: u64,
    pub(crate) desired: AgentSettings,
    pub(crate) set_at: Option<i64>,
    pub(crate) set_by: Option<String>,
}

/// Why a command's outcome was not stored.
#[derive(Debug)]
pub(crate) enum OutcomeError {
    /// No such command of this host.
    Unknown,
    /// The caller's key may not act for the command's agent (its kind).
    Forbidden(AgentKind),
    /// It is already final (its state).
    Final(CommandState),
    /// The database.
    Db(sqlx::Error),
}

impl From<sqlx::Error> for OutcomeError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// The desired settings of `host_id` (revision 0 and empty when never set).
    pub(crate) async fn desired_settings(&self, host_id: &str) -> Result<DesiredRow, sqlx::Error> {
        let row: Result<Option<(i64, String, i64, String)>, _> =
            on_pool!(&self.pool(), |p| sqlx::query_as(
                "SELECT revision, desired, set_at, set_by FROM agent_settings WHERE host_id = $1",
            )
            .bind(host_id)
            .fetch_optional(p)
            .await);
        let Some((revision, desired, set_at, set_by)) = self.seen(row)? else {
            return Ok(DesiredRow::default());
        };
        Ok(DesiredRow {
            revision: to_u64(revision),
            // A document that no longer parses (an older format) reads as "nothing set".
            desired: serde_json::from_str(&desired).unwrap_or_default(),
            set_at: Some(set_at),
            set_by: Some(set_by),
        })
    }

    /// Replace the desired settings of `host_id`; the new revision.
    pub(crate) async fn set_desired_settings(
        &self,
        host_id: &str,
        desired: &AgentSettings,
        by: &str,
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let revision = self.write_desired_settings(host_id, desired, by, now, None).await?;
        self.kept([Change::DesiredSettings {
            host_id: host_id.to_owned(),
            desired: desired.clone(),
            by: by.to_owned(),
            now,
            revision,
        }]);
        Ok(revision)
    }

    /// The row of [`Self::set_desired_settings`], at the next revision; with `revision`, the
    /// change written again after a fault (`changes.rs`), at the revision it had.
    pub(super) async fn write_desired_settings(
        &self,
        host_id: &str,
        desired: &AgentSettings,
        by: &str,
        now: i64,
        revision: Option<u64>,
    ) -> Result<u64, sqlx::Error> {
        let json = serde_json::to_string(desired).unwrap_or_default();
        let revision = on_pool!(&self.pool(), |p| sqlx::query_scalar(
            "INSERT INTO agent_settings (host_id, revision, desired, set_at, set_by)
             VALUES ($1, COALESCE($5, 1), $2, $3, $4)
             ON CONFLICT (host_id) DO UPDATE
             SET revision = COALESCE($5, agent_settings.revision + 1),
                desired = excluded.desired, set_at = excluded.set_at, set_by = excluded.set_by
             RETURNING revision",
        )
        .bind(host_id)
        .bind(json)
        .bind(now)
        .bind(by)
        .bind(revision.map(|r| i64::try_from(r).unwrap_or(i64::MAX)))
        .fetch_one(p)
        .await);
        self.seen(revision).map(to_u64)
    }

    /// What the agents of `host_id` last reported applying.
    pub(crate) async fn applied_settings(
        &self,
        host_id: &str,
    ) -> Result<Vec<AppliedState>, sqlx::Error> {
        let rows: Result<Vec<AppliedRow>, _> = on_pool!(&self.pool(), |p| sqlx::query_as(
            "SELECT kind, revision, in_force, refused, local, at FROM agent_applied
                 WHERE host_id = $1 ORDER BY kind",
        )
        .bind(host_id)
        .fetch_all(p)
        .await);
        let mut out = Vec::new();
        for (kind, revision, in_force, refused, local, at) in self.seen(rows)? {
            let Some(agent) = str_enum::<AgentKind>(&kind) else { continue };
            out.push(AppliedState {
                agent,
                revision: to_u64(revision),
                in_force: serde_json::from_str(&in_force).unwrap_or_default(),
                refused: serde_json::from_str::<Vec<Refusal>>(&refused).unwrap_or_default(),
                local: local.and_then(|l| serde_json::from_str(&l).ok()),
                at: from_millis(at),
            });
        }
        Ok(out)
    }

    /// Record what an agent of `host_id` applied.
    pub(crate) async fn set_applied_settings(
        &self,
        host_id: &str,
        applied: &AppliedSettings,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "INSERT INTO agent_applied (host_id, kind, revision, in_force, refused, local, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (host_id, kind) DO UPDATE SET revision = excluded.revision,
                in_force = excluded.in_force, refused = excluded.refused, local = excluded.local,
                at = excluded.at",
        )
        .bind(host_id)
        .bind(enum_str(applied.agent))
        .bind(i64::try_from(applied.revision).unwrap_or(i64::MAX))
        .bind(serde_json::to_string(&applied.in_force).unwrap_or_default())
        .bind(serde_json::to_string(&applied.refused).unwrap_or_default())
        .bind(applied.local.as_ref().and_then(|l| serde_json::to_string(l).ok()))
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done).map(|_| ())
    }

    /// Queue a command; the stored command.
    pub(crate) async fn create_command(
        &self,
        host_id: &str,
        agent: AgentKind,
        command: CommandKind,
        by: &str,
        now: i64,
    ) -> Result<Command, sqlx::Error> {
        let id: Result<i64, _> = on_pool!(&self.pool(), |p| {
            sqlx::query_scalar(
            "INSERT INTO agent_commands (host_id, kind, command, asked_by, asked_at, state, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
        )
        .bind(host_id)
        .bind(enum_str(agent))
        .bind(enum_str(command))
        .bind(by)
        .bind(now)
        .bind(now)
        .fetch_one(p)
        .await
        });
        let id = self.seen(id)?;
        Ok(Command {
            id,
            host_id: host_id.to_owned(),
            agent,
            command,
            asked_by: by.to_owned(),
            asked_at: from_millis(now),
            state: CommandState::Pending,
            updated_at: from_millis(now),
            message: None,
            result: None,
        })
    }

    /// Commands of `host_id`, newest first, optionally of one agent and in one state.
    pub(crate) async fn commands(
        &self,
        host_id: &str,
        agent: Option<AgentKind>,
        state: Option<CommandState>,
        limit: u32,
        now: i64,
    ) -> Result<Vec<Command>, sqlx::Error> {
        self.expire_commands(host_id, now).await?;
        let rows: Result<Vec<CommandRow>, _> = on_pool!(&self.pool(), |p| {
            sqlx::query_as(
            "SELECT id, host_id, kind, command, asked_by, asked_at, state, updated_at, message, result
             FROM agent_commands
             WHERE host_id = $1 AND ($2 IS NULL OR kind = $3) AND ($4 IS NULL OR state = $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(host_id)
        .bind(agent.map(enum_str))
        .bind(agent.map(enum_str))
        .bind(state.map(enum_str))
        .bind(state.map(enum_str))
        .bind(i64::from(limit))
        .fetch_all(p)
        .await
        });
        Ok(self.seen(rows)?.into_iter().filter_map(command_row).collect())
    }

    /// How many commands wait for the `agent` of `host_id`.
    pub(crate) async fn pending_commands(
        &self,
        host_id: &str,
        agent: AgentKind,
        now: i64,
    ) -> Result<u32, sqlx::Error> {
        self.expire_commands(host_id, now).await?;
        let n: Result<i64, _> = on_pool!(&self.pool(), |p| {
            sqlx::query_scalar(
            "SELECT COUNT(*) FROM agent_commands WHERE host_id = $1 AND kind = $2 AND state = 'pending'",
        )
        .bind(host_id)
        .bind(enum_str(agent))
        .fetch_one(p)
        .await
        });
        Ok(u32::try_from(self.seen(n)?).unwrap_or(u32::MAX))
    }

    /// Record an agent's progress on command `id` of `host_id`; the command as it now is.
    pub(crate) async fn command_outcome(
        &self,
        host_id: &str,
        id: i64,
        role: KeyRole,
        outcome: &CommandReport,
        now: i64,
    ) -> Result<Command, OutcomeError> {
        self.expire_commands(host_id, now).await?;
        // One transaction: the state is checked and changed at once.
        let result: Result<Command, OutcomeError> = async {
            let mut tx = WriteTx::begin(&self.pool()).await?;
            let row: Option<CommandRow> = on_conn!(tx.conn()?, |c| sqlx::query_as(
                "SELECT id, host_id, kind, command, asked_by, asked_at, state, updated_at, message, result
                 FROM agent_commands WHERE id = $1 AND host_id = $2",
            )
            .bind(id)
            .bind(host_id)
            .fetch_optional(c)
            .await)?;
            let Some(mut command) = row.and_then(command_row) else {
                return Err(OutcomeError::Unknown);
            };
            if !role.allows(command.agent) {
                return Err(OutcomeError::Forbidden(command.agent));
            }
            if command.state.is_final() {
                return Err(OutcomeError::Final(command.state));
            }
            let result = outcome.result.as_ref().map(|v| v.to_string());
            on_conn!(tx.conn()?, |c| sqlx::query(
                "UPDATE agent_commands SET state = $1, updated_at = $2, message = $3, result = $4
                 WHERE id = $5",
            )
            .bind(enum_str(outcome.state))
            .bind(now)
            .bind(outcome.message.as_deref())
            .bind(result)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            tx.commit().await?;
            command.state = outcome.state;
            command.updated_at = from_millis(now);
            command.message.clone_from(&outcome.message);
            command.result.clone_from(&outcome.result);
            Ok(command)
        }
        .await;
        if let Err(OutcomeError::Db(e)) = &result {
            self.observe(e);
        }
        result
    }

    /// Commands of `host_id` not finished within the expiry become `expired`, so an agent that
    /// comes back after a long outage never runs a restart asked for yesterday.
    async fn expire_commands(&self, host_id: &str, now: i64) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE agent_commands SET state = 'expired', updated_at = $1
             WHERE host_id = $2 AND state IN ('pending', 'delivered') AND asked_at < $3",
        )
        .bind(now)
        .bind(host_id)
        .bind(now - COMMAND_EXPIRY_S * 1000)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done).map(|_| ())
    }
}

/// A row of `agent_applied`: kind, revision, in force, refused, local, at.
type AppliedRow = (String, i64, String, String, Option<String>, i64);

/// A row of `agent_commands`.
#[derive(sqlx::FromRow)]
struct CommandRow {
    id: i64,
    host_id: String,
    kind: String,
    command: String,
    asked_by: String,
    asked_at: i64,
    state: String,
    updated_at: i64,
    message: Option<String>,
    result: Option<String>,
}

/// A command; None for a row of a kind or command this engine does not know.
fn command_row(r: CommandRow) -> Option<Command> {
    Some(Command {
        id: r.id,
        host_id: r.host_id,
        agent: str_enum(&r.kind)?,
        command: str_enum(&r.command)?,
        asked_by: r.asked_by,
        asked_at: from_millis(r.asked_at),
        state: str_enum(&r.state)?,
        updated_at: from_millis(r.updated_at),
        message: r.message,
        result: r.result.and_then(|s| serde_json::from_str(&s).ok()),
    })
}
