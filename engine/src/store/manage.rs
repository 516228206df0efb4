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
use sqlx::Row as _;

use super::{Store, WriteTx, enum_str, from_millis, str_enum};

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
        let row = sqlx::query(
            "SELECT revision, desired, set_at, set_by FROM agent_settings WHERE host_id = ?",
        )
        .bind(host_id)
        .fetch_optional(&self.pool())
        .await;
        let Some(row) = self.seen(row)? else { return Ok(DesiredRow::default()) };
        let desired: String = row.try_get("desired")?;
        Ok(DesiredRow {
            revision: to_u64(row.try_get("revision")?),
            // A document that no longer parses (an older format) reads as "nothing set".
            desired: serde_json::from_str(&desired).unwrap_or_default(),
            set_at: Some(row.try_get("set_at")?),
            set_by: Some(row.try_get("set_by")?),
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
        let json = serde_json::to_string(desired).unwrap_or_default();
        let revision = sqlx::query_scalar(
            "INSERT INTO agent_settings (host_id, revision, desired, set_at, set_by)
             VALUES (?, 1, ?, ?, ?)
             ON CONFLICT (host_id) DO UPDATE SET revision = revision + 1,
                desired = excluded.desired, set_at = excluded.set_at, set_by = excluded.set_by
             RETURNING revision",
        )
        .bind(host_id)
        .bind(json)
        .bind(now)
        .bind(by)
        .fetch_one(&self.pool())
        .await;
        self.seen(revision).map(to_u64)
    }

    /// What the agents of `host_id` last reported applying.
    pub(crate) async fn applied_settings(
        &self,
        host_id: &str,
    ) -> Result<Vec<AppliedState>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT kind, revision, in_force, refused, local, at FROM agent_applied
             WHERE host_id = ? ORDER BY kind",
        )
        .bind(host_id)
        .fetch_all(&self.pool())
        .await;
        let mut out = Vec::new();
        for row in self.seen(rows)? {
            let kind: String = row.try_get("kind")?;
            let Some(agent) = str_enum::<AgentKind>(&kind) else { continue };
            let in_force: String = row.try_get("in_force")?;
            let refused: String = row.try_get("refused")?;
            let local: Option<String> = row.try_get("local")?;
            out.push(AppliedState {
                agent,
                revision: to_u64(row.try_get("revision")?),
                in_force: serde_json::from_str(&in_force).unwrap_or_default(),
                refused: serde_json::from_str::<Vec<Refusal>>(&refused).unwrap_or_default(),
                local: local.and_then(|l| serde_json::from_str(&l).ok()),
                at: from_millis(row.try_get("at")?),
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
        let done = sqlx::query(
            "INSERT INTO agent_applied (host_id, kind, revision, in_force, refused, local, at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
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
        .execute(&self.pool())
        .await;
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
        let id: Result<i64, _> = sqlx::query_scalar(
            "INSERT INTO agent_commands (host_id, kind, command, asked_by, asked_at, state, updated_at)
             VALUES (?, ?, ?, ?, ?, 'pending', ?) RETURNING id",
        )
        .bind(host_id)
        .bind(enum_str(agent))
        .bind(enum_str(command))
        .bind(by)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool())
        .await;
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
        let rows = sqlx::query(
            "SELECT id, host_id, kind, command, asked_by, asked_at, state, updated_at, message, result
             FROM agent_commands
             WHERE host_id = ? AND (? IS NULL OR kind = ?) AND (? IS NULL OR state = ?)
             ORDER BY id DESC LIMIT ?",
        )
        .bind(host_id)
        .bind(agent.map(enum_str))
        .bind(agent.map(enum_str))
        .bind(state.map(enum_str))
        .bind(state.map(enum_str))
        .bind(limit)
        .fetch_all(&self.pool())
        .await;
        self.seen(rows)?.iter().filter_map(|r| command_row(r).transpose()).collect()
    }

    /// How many commands wait for the `agent` of `host_id`.
    pub(crate) async fn pending_commands(
        &self,
        host_id: &str,
        agent: AgentKind,
        now: i64,
    ) -> Result<u32, sqlx::Error> {
        self.expire_commands(host_id, now).await?;
        let n: Result<i64, _> = sqlx::query_scalar(
            "SELECT COUNT(*) FROM agent_commands WHERE host_id = ? AND kind = ? AND state = 'pending'",
        )
        .bind(host_id)
        .bind(enum_str(agent))
        .fetch_one(&self.pool())
        .await;
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
            let row = sqlx::query(
                "SELECT id, host_id, kind, command, asked_by, asked_at, state, updated_at, message, result
                 FROM agent_commands WHERE id = ? AND host_id = ?",
            )
            .bind(id)
            .bind(host_id)
            .fetch_optional(tx.conn()?)
            .await?;
            let Some(mut command) = row.as_ref().map(command_row).transpose()?.flatten() else {
                return Err(OutcomeError::Unknown);
            };
            if !role.allows(command.agent) {
                return Err(OutcomeError::Forbidden(command.agent));
            }
            if command.state.is_final() {
                return Err(OutcomeError::Final(command.state));
            }
            let result = outcome.result.as_ref().map(|v| v.to_string());
            sqlx::query(
                "UPDATE agent_commands SET state = ?, updated_at = ?, message = ?, result = ?
                 WHERE id = ?",
            )
            .bind(enum_str(outcome.state))
            .bind(now)
            .bind(outcome.message.as_deref())
            .bind(result)
            .bind(id)
            .execute(tx.conn()?)
            .await?;
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
        let done = sqlx::query(
            "UPDATE agent_commands SET state = 'expired', updated_at = ?
             WHERE host_id = ? AND state IN ('pending', 'delivered') AND asked_at < ?",
        )
        .bind(now)
        .bind(host_id)
        .bind(now - COMMAND_EXPIRY_S * 1000)
        .execute(&self.pool())
        .await;
        self.seen(done).map(|_| ())
    }
}

/// A command row; None for a row of a kind or command this engine does not know.
fn command_row(r: &sqlx::sqlite::SqliteRow) -> Result<Option<Command>, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    let command: String = r.try_get("command")?;
    let state: String = r.try_get("state")?;
    let (Some(agent), Some(command), Some(state)) =
        (str_enum(&kind), str_enum(&command), str_enum(&state))
    else {
        return Ok(None);
    };
    let result: Option<String> = r.try_get("result")?;
    Ok(Some(Command {
        id: r.try_get("id")?,
        host_id: r.try_get("host_id")?,
        agent,
        command,
        asked_by: r.try_get("asked_by")?,
        asked_at: from_millis(r.try_get("asked_at")?),
        state,
        updated_at: from_millis(r.try_get("updated_at")?),
        message: r.try_get("message")?,
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
    }))
}
