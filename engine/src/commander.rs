//! Relay commanding: the engine's HTTP calls to relay agents. The loop (`controller.rs`) hands
//! it each house plan's relays (valves and plants, on or off); it commands the outputs those
//! relay ids stand for (offs first), records each answer with the output and each call's
//! outcome with the agent, and publishes relay events.
//!
//! An agent is commanded only once the engine has read what it is doing (`reconcile`, at the
//! top of each pass, before the decision): after the engine's own start, after the agent
//! stopped answering (a partition, its host rebooting, Wi-Fi out for an hour: meanwhile its
//! fallback program may have switched its outputs), and after it registered again (a new
//! [`RelayEpoch`]). One rule for all three, so the minimum on/off times the next decision
//! protects count from the agent's real switching times, never from the engine's last command.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use hearth_common::auth::SiteSecret;
use hearth_common::sse::EventBus;
use hearth_proto::Timestamp;
use hearth_proto::agents::KeyRole;
use hearth_proto::client::{ClientError, RelayAgentClient};
use hearth_proto::events::{Event, Topic};
use hearth_proto::relays::{RelayCommand, RelayState};
use tokio::task::JoinSet;

use crate::metrics::Counters;
use crate::store::{Contact, RelayEpoch, RelayRow, Store, millis};
use crate::zones::resolve::Outputs;
use crate::zones::{House, RelayId};

/// Sends the house plan to the relay outputs it names.
pub(crate) struct Commander {
    store: Store,
    site: SiteSecret,
    events: EventBus,
    counters: Arc<Counters>,
    /// By host: the URL and key role the client was made for, and the client.
    clients: HashMap<String, (String, KeyRole, RelayAgentClient)>,
    /// Relays that failed last time, and how: log changes, not every failure.
    failing: HashMap<(String, String), String>,
    /// The outputs last commanded on, by (host, output): one the plan stops naming (its plant
    /// deleted, another relay named in its place) is commanded off at once, not left on until
    /// its lease runs out.
    switched_on: BTreeSet<(String, String)>,
    /// Relay agents' fallbacks: noted from the states read before commanding, ended by an
    /// answered command.
    pub(crate) fallbacks: Arc<crate::fallback::Seen>,
    /// By host: the epoch in which the agent's state was last read (or found unreadable). An
    /// agent is commanded only while this is its current epoch: one never read since the
    /// engine started, one that registered since, and one whose call got no answer (removed
    /// then) is read first.
    read_in: HashMap<String, RelayEpoch>,
    /// Agents whose read got no answer, and when to ask again: a dead agent costs the loop a
    /// timeout once per renewal period, not once per pass.
    retry_at: HashMap<String, tokio::time::Instant>,
}

impl Commander {
    pub(crate) fn new(
        store: Store,
        site: SiteSecret,
        events: EventBus,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            store,
            site,
            events,
            counters,
            clients: HashMap::new(),
            failing: HashMap::new(),
            switched_on: BTreeSet::new(),
            fallbacks: Arc::default(),
            read_in: HashMap::new(),
            retry_at: HashMap::new(),
        }
    }

    /// The client for a relay agent at `url`, presenting the engine token of the agent's device
    /// key: the role it registered with (None: registered before roles were recorded, so its
    /// key is the untyped one).
    pub(crate) fn client(
        &mut self,
        host_id: &str,
        url: &str,
        role: Option<KeyRole>,
    ) -> RelayAgentClient {
        let role = role.unwrap_or(KeyRole::Untyped);
        match self.clients.get(host_id) {
            Some((u, r, c)) if u == url && *r == role => c.clone(),
            _ => {
                let credential = self.site.device_key(host_id, role).engine_credential();
                let c = RelayAgentClient::new(url, Some(credential));
                self.clients.insert(host_id.to_owned(), (url.to_owned(), role, c.clone()));
                c
            }
        }
    }

    /// Store what an agent reported for an output, in answer to a call sent in epoch `sent`;
    /// publish a relay event when it changed. An answer to a call sent before the agent's
    /// latest registration is dropped: the registration is newer (see [`RelayEpoch`]), and it
    /// has the loop command the agent again. False when dropped.
    async fn record(
        &self,
        before: Option<RelayState>,
        host_id: &str,
        status: &hearth_proto::relays::OutputStatus,
        command_done: bool,
        sent: RelayEpoch,
    ) -> bool {
        let now = millis(Timestamp::now());
        match self.store.set_relay_status(host_id, status, command_done, now, sent).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(%host_id, output_id = %status.id, state = ?status.state,
                    "relay agent registered since this call was sent; its answer is not recorded");
                return false;
            }
            Err(e) => tracing::error!(error = %e, "cannot record relay state"),
        }
        if before != Some(status.state) {
            self.events.publish(Event::Relay {
                host_id: host_id.to_owned(),
                output_id: status.id.clone(),
                state: status.state,
            });
        }
        true
    }

    /// Record how a call to relay agent `host_id` went. When its reachability flips, say so
    /// once in the log and tell the dashboards to re-read (`changed` "relays"): a relay agent
    /// that stops answering its renewals is shown unreachable at the first failed one.
    async fn contact(&mut self, host_id: &str, contact: Contact<'_>) {
        if matches!(contact, Contact::NoAnswer(_)) {
            // Whatever it does from now on (its fallback program, a restart) is unknown until
            // it is read again.
            self.read_in.remove(host_id);
        }
        let now = millis(Timestamp::now());
        match self.store.relay_contact(host_id, contact, now).await {
            Ok(false) => {}
            Ok(true) => {
                if let Contact::NoAnswer(error) = contact {
                    tracing::error!(%host_id, %error,
                        "relay agent unreachable: its outputs are out of the engine's hands (they \
                         return to their safe states when their leases run out if the agent \
                         process lives; a dead process may leave them as they were)");
                } else {
                    tracing::info!(%host_id, "relay agent answers again");
                }
                self.events.changed(Topic::Relays);
            }
            Err(e) => tracing::error!(error = %e, "cannot record relay agent contact"),
        }
    }

    /// Whether relay agent `host_id` must be read before it is commanded: never read since
    /// the engine started, registered since it was read, or silent since.
    fn needs_read(&self, host_id: &str) -> bool {
        self.read_in.get(host_id) != Some(&self.store.relay_epoch(host_id))
    }

    /// Read, in parallel, every relay agent that must be read before it is commanded (see
    /// [`Commander::needs_read`]; one that did not answer is asked again after `retry`), and
    /// record what each says: its outputs (state, when they switched, a deferred off) and its
    /// fallback. Call it before deciding, so the decision protects the equipment from what the
    /// agents really did. True when an agent was read (command it now: it is not commanded
    /// until it is).
    pub(crate) async fn reconcile(&mut self, retry: std::time::Duration) -> bool {
        let relays = match self.store.relays().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read relays");
                return false;
            }
        };
        let now = tokio::time::Instant::now();
        let agents: BTreeMap<String, (String, Option<KeyRole>)> = relays
            .iter()
            .filter(|r| self.needs_read(&r.host_id))
            .filter(|r| self.retry_at.get(&r.host_id).is_none_or(|at| *at <= now))
            .filter_map(|r| Some((r.host_id.clone(), (r.url.clone()?, r.key_role))))
            .collect();
        let mut reads = JoinSet::new();
        for (host_id, (url, role)) in agents {
            let client = self.client(&host_id, &url, role);
            let sent = self.store.relay_epoch(&host_id);
            reads.spawn(async move { (host_id, sent, client.relays().await) });
        }
        let mut read_any = false;
        while let Some(joined) = reads.join_next().await {
            let Ok((host_id, sent, result)) = joined else { continue };
            match result {
                Ok(list) => {
                    let mut current = true;
                    for output in &list.outputs {
                        let before = relays
                            .iter()
                            .find(|r| r.host_id == host_id && r.output_id == output.id)
                            .map(|r| r.state);
                        current &= self.record(before, &host_id, output, false, sent).await;
                    }
                    let now = Timestamp::now();
                    let outputs = read_outputs(&list.outputs);
                    match &list.fallback {
                        Some(f) => tracing::warn!(%host_id, %outputs, why = ?f.why,
                            since_s_ago = f.since_s_ago,
                            "read the relay agent in fallback before commanding it: taking over \
                             from what its fallback program did"),
                        None => tracing::info!(%host_id, %outputs,
                            "read relay states before commanding"),
                    }
                    if current && self.fallbacks.note(&host_id, list.fallback.as_ref(), now) {
                        self.events.changed(Topic::Relays);
                    }
                    self.contact(&host_id, Contact::Answered).await;
                    // Read in the epoch the call was sent in: when the agent registered
                    // meanwhile, it is read again next pass.
                    self.read_in.insert(host_id.clone(), sent);
                    self.retry_at.remove(&host_id);
                    read_any = true;
                }
                Err(e) => {
                    let text = e.to_string();
                    let contact = contact_of(&e, &text);
                    if let Contact::NoAnswer(_) = contact {
                        // Not commanded (a command would get no answer either); its outputs
                        // keep their last report until it answers.
                        self.retry_at.insert(host_id.clone(), now + retry);
                        tracing::debug!(%host_id, error = %e,
                            "cannot read the relay agent's state before commanding it");
                    } else {
                        // It answers but its state cannot be read (an error status, an answer
                        // that does not decode): commanded from its last report rather than
                        // never.
                        tracing::warn!(%host_id, error = %e,
                            "cannot read the relay agent's state before commanding; using its \
                             last report");
                        self.read_in.insert(host_id.clone(), sent);
                        self.retry_at.remove(&host_id);
                    }
                    self.contact(&host_id, contact).await;
                }
            }
        }
        read_any
    }

    /// Command every relay of the plan of `house`: a function group (`function:heat`) stands
    /// for its outputs, as the house resolves it against the registered ones. Offs first, so
    /// an agent that interlocks heat with cool never sees both asked on. Every `on` carries
    /// the lease, valves included: an engine that dies leaves nothing on beyond it. An output
    /// the plan does not name (a fan, an aux, a valve of no zone) is not commanded, except
    /// off once when it was last commanded on. True when an agent refused (409).
    pub(crate) async fn command(
        &mut self,
        house: &House,
        plan: &BTreeMap<RelayId, bool>,
        lease_s: u32,
    ) -> bool {
        let relays = match self.store.relays().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read relays");
                return false;
            }
        };
        let mut wanted = wanted(house, &relays, plan);
        for key in &self.switched_on {
            wanted.entry(key.clone()).or_insert(false);
        }
        self.switched_on = wanted.iter().filter(|(_, on)| **on).map(|(k, _)| k.clone()).collect();
        let mut refused = false;
        for phase_on in [false, true] {
            let mut calls = JoinSet::new();
            let phase = relays.iter().filter(|r| {
                wanted.get(&(r.host_id.clone(), r.output_id.clone())) == Some(&phase_on)
            });
            for relay in phase {
                // Not before its state was read (`reconcile`): the next pass commands it.
                if self.needs_read(&relay.host_id) {
                    continue;
                }
                let Some(url) = relay.url.clone() else { continue };
                let client = self.client(&relay.host_id, &url, relay.key_role);
                let command = if phase_on {
                    RelayCommand { state: RelayState::On, lease_s: Some(lease_s) }
                } else {
                    RelayCommand { state: RelayState::Off, lease_s: None }
                };
                let (host_id, output_id, before) =
                    (relay.host_id.clone(), relay.output_id.clone(), relay.state);
                let sent = self.store.relay_epoch(&host_id);
                calls.spawn(async move {
                    let result = client.command(&output_id, &command).await;
                    (host_id, output_id, before, sent, result)
                });
            }
            while let Some(joined) = calls.join_next().await {
                let Ok((host_id, output_id, before, sent, result)) = joined else { continue };
                refused |= self.answered(&host_id, &output_id, before, sent, result).await;
            }
        }
        refused
    }

    /// Record one command's answer (to a command sent in epoch `sent`); true when the agent
    /// refused it.
    async fn answered(
        &mut self,
        host_id: &str,
        output_id: &str,
        before: RelayState,
        sent: RelayEpoch,
        result: Result<hearth_proto::relays::OutputStatus, ClientError>,
    ) -> bool {
        let key = (host_id.to_owned(), output_id.to_owned());
        let c = &self.counters;
        match &result {
            Ok(_) => Counters::add(&c.relay_commands_done, 1),
            Err(ClientError::Api { status: 409, .. }) => {
                Counters::add(&c.relay_commands_refused, 1)
            }
            Err(_) => Counters::add(&c.relay_commands_failed, 1),
        }
        match result {
            Ok(status) => {
                if self.failing.remove(&key).is_some() {
                    tracing::info!(%host_id, %output_id, "relay carries out commands again");
                }
                // A carried-out command ends whatever fallback the agent ran.
                if self.fallbacks.ended(host_id, Timestamp::now()) {
                    self.events.changed(Topic::Relays);
                }
                if let Some(left) = status.pending_off_in_s {
                    tracing::debug!(%host_id, %output_id, left_s = left,
                        "the relay agent defers the off (its minimum on time)");
                }
                self.record(Some(before), host_id, &status, true, sent).await;
                self.contact(host_id, Contact::Answered).await;
                false
            }
            // The agent answered and refused (an interlock, its minimum off time): record why,
            // for the user and for the next decision; the command is repeated soon.
            Err(ClientError::Api { status: 409, body }) => {
                if self.failing.insert(key, body.error.clone()).as_ref() != Some(&body.error) {
                    tracing::warn!(%host_id, %output_id, code = ?body.code, reason = %body.error,
                        "the relay agent refused the command");
                }
                let now = millis(Timestamp::now());
                if let Err(e) =
                    self.store.set_relay_refusal(host_id, output_id, &body.error, now, sent).await
                {
                    tracing::error!(error = %e, "cannot record relay refusal");
                }
                self.contact(host_id, Contact::Answered).await;
                true
            }
            Err(e) => {
                let text = e.to_string();
                if self.failing.insert(key, text.clone()).as_ref() != Some(&text) {
                    tracing::warn!(%host_id, %output_id, error = %text, "relay command failed");
                }
                // No answer at all (refused, timed out): the agent is unreachable from this
                // renewal on. An error status is an answer: reachable, but failing.
                let contact = contact_of(&e, &text);
                self.contact(host_id, contact).await;
                false
            }
        }
    }
}

/// Outputs as read, for the log: `heat=off (switched 30 s ago) cool=on (switched 5 s ago,
/// off in 55 s)`.
fn read_outputs(outputs: &[hearth_proto::relays::OutputStatus]) -> String {
    let one = |o: &hearth_proto::relays::OutputStatus| {
        let state = if o.state.is_on() { "on" } else { "off" };
        let pending = o.pending_off_in_s.map(|s| format!(", off in {s:.0} s")).unwrap_or_default();
        format!("{}={state} (switched {:.0} s ago{pending})", o.id, o.changed_s_ago)
    };
    outputs.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// Each registered output the plan names, on or off, by (host, output). Should two relay ids
/// of the plan stand for one output and disagree, it is commanded off.
fn wanted(
    house: &House,
    relays: &[RelayRow],
    plan: &BTreeMap<RelayId, bool>,
) -> BTreeMap<(String, String), bool> {
    let outputs = Outputs::new(house, relays);
    let mut wanted = BTreeMap::new();
    for (id, on) in plan {
        for r in outputs.of(id) {
            let slot = wanted.entry((r.host_id.clone(), r.output_id.clone())).or_insert(*on);
            *slot &= *on;
        }
    }
    wanted
}

/// A failed call as a [`Contact`]: no HTTP answer (refused, reset, timed out) is `NoAnswer`;
/// an error status, or an answer that does not decode, is an answer.
fn contact_of<'a>(e: &ClientError, text: &'a str) -> Contact<'a> {
    match e {
        ClientError::Transport(t) if !t.is_decode() => Contact::NoAnswer(text),
        _ => Contact::Failed(text),
    }
}
