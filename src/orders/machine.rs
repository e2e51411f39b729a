//! The work-order (工单) state machine: pure, no I/O, no clock.
//!
//! An order is a fold over its append-only events. Each event is one
//! `(ActorRole, Action)` pair accepted by [`apply`]; the storage layer stores
//! it with the acting person, the time (the machine has no clock) and the
//! [`Transition`]'s `from`/`to`; [`Action::text`] and [`Action::attachments`]
//! fill the reason and attachment columns. [`replay`] rebuilds the [`Order`] from the events,
//! so the current state and every KPI can be recomputed at any time.
//!
//! Decisions worth knowing:
//! - **办结 before 评价** (12345 practice): a passed 核查 closes the order
//!   (`VerifyPass` → [`State::PendingEvaluation`], counted as 结案); 回访 and
//!   评单 follow. 满意/基本满意 → [`State::Closed`]; the first 不满意 reopens
//!   the order (重办: back to [`State::Handling`] with the same units); any
//!   later 不满意 sends it to [`State::Supervision`] (督办中), where a
//!   supervisor reassigns, escalates, deliberates, shelves or concludes it.
//!   An order nobody rates is archived (`Archive`) by the system or a
//!   supervisor when the evaluation window ends.
//! - **Deadlines** run only in [`State::PendingSign`] and [`State::Handling`].
//!   The machine has no clock: the timer service tells it a deadline passed
//!   with `MarkOverdue` (role `System`), which makes "延期 must be requested
//!   before the deadline" and "escalate when overdue" replayable facts.
//!   [`clock_effect`] says which timer to start, pause, resume, extend or stop.
//! - **Pauses**: 挂账 (`Shelved`), 议单 (`InDeliberation`) and 退单待审
//!   (`ReturnRequested`) remember the exact state to return to in
//!   [`Order::resume_to`]; pauses do not nest (you resume before you pause
//!   again), so one slot is enough.
//! - **A pending 延期 request lapses** when the order changes state (signing,
//!   reporting back, a return, a pause, an escalation…): the decision would no
//!   longer be about the deadline it was asked against; the unit may ask again.
//! - **Roles** decide *who* may do an action ([`ActionKind::roles`]); the state
//!   and facts decide *when*. Whether the acting person belongs to the lead
//!   unit, the right centre or is the reporter is the caller's check (it needs
//!   the database); so is "the merge target exists and is not this order".
//! - Escalation clears the assignment and returns the order to
//!   [`State::PendingDispatch`] at the next [`Level`]; the centre at that level
//!   dispatches afresh. District is the top.

use serde::{Deserialize, Serialize};

/// Declares a fieldless enum with serde `snake_case` names, `ALL`, `as_str()`
/// (the serde name, for database columns) and `label_key()` (a message
/// catalogue key), so the three spellings cannot drift apart.
macro_rules! keyed_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $prefix:literal {
            $($(#[$vmeta:meta])* $variant:ident = $snake:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The serde name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $snake,)+
                }
            }

            /// The message-catalogue key of the label shown to people.
            pub fn label_key(self) -> &'static str {
                match self {
                    $($name::$variant => concat!($prefix, $snake),)+
                }
            }
        }
    };
}

keyed_enum! {
    /// Where a work order stands.
    pub enum State: "order.state." {
        /// 待受理
        PendingAccept = "pending_accept",
        /// 不予受理 (terminal)
        Rejected = "rejected",
        /// 待派单
        PendingDispatch = "pending_dispatch",
        /// 待签收: dispatched, the lead unit's sign deadline runs.
        PendingSign = "pending_sign",
        /// 办理中: signed, the handling deadline runs.
        Handling = "handling",
        /// 退单待审: the unit asked to return it; the dispatcher decides.
        ReturnRequested = "return_requested",
        /// 待核查: the unit reported back.
        PendingVerify = "pending_verify",
        /// 已办结待评价: verified and closed (办结); 回访/评单 pending.
        PendingEvaluation = "pending_evaluation",
        /// 已完结: rated satisfied, archived unrated, or concluded under supervision (terminal).
        Closed = "closed",
        /// 挂账
        Shelved = "shelved",
        /// 议单中
        InDeliberation = "in_deliberation",
        /// 已撤回 by the reporter (terminal)
        Withdrawn = "withdrawn",
        /// 已并单 into a master order (terminal)
        Merged = "merged",
        /// 督办中: rated dissatisfied again after a reopen.
        Supervision = "supervision",
    }
}

impl State {
    /// No action leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Rejected | State::Closed | State::Withdrawn | State::Merged)
    }

    /// A unit's deadline (sign or handle) runs in this state.
    pub fn has_deadline(self) -> bool {
        matches!(self, State::PendingSign | State::Handling)
    }

    /// States that wait and later return to [`Order::resume_to`].
    pub fn is_paused(self) -> bool {
        matches!(self, State::Shelved | State::InDeliberation | State::ReturnRequested)
    }

    /// 办结 has happened (the order counts as closed for 结案率).
    pub fn is_closed(self) -> bool {
        matches!(self, State::PendingEvaluation | State::Closed)
    }
}

keyed_enum! {
    /// The governance level an order is handled at.
    #[derive(PartialOrd, Ord)]
    pub enum Level: "order.level." {
        Community = "community",
        Subdistrict = "subdistrict",
        District = "district",
    }
}

impl Level {
    /// The level an escalation goes to; `None` at the top.
    pub fn next(self) -> Option<Level> {
        match self {
            Level::Community => Some(Level::Subdistrict),
            Level::Subdistrict => Some(Level::District),
            Level::District => None,
        }
    }
}

keyed_enum! {
    /// 评单 result.
    pub enum Rating: "order.rating." {
        /// 满意
        Satisfied = "satisfied",
        /// 基本满意
        FairlySatisfied = "fairly_satisfied",
        /// 不满意
        Dissatisfied = "dissatisfied",
    }
}

keyed_enum! {
    /// Why a resident is dissatisfied (不满意原因), picked from a list so
    /// that KPIs can count them.
    pub enum EvalReason: "order.eval_reason." {
        /// 问题未解决
        Unresolved = "unresolved",
        /// 办理时间过长
        TooSlow = "too_slow",
        /// 工作人员态度不好
        Attitude = "attitude",
        /// 未联系本人
        NotContacted = "not_contacted",
    }
}

keyed_enum! {
    /// What a 回访 call found. It is recorded on the timeline: the
    /// resident's own rating (评单) is never replaced by what a caller heard,
    /// but 不满意 heard before the resident rated sends the order back (重办).
    pub enum FollowUpOutcome: "order.follow_up_outcome." {
        /// 未接通
        NotReached = "not_reached",
        /// 已接通 (no opinion given)
        Reached = "reached",
        /// 满意
        Satisfied = "satisfied",
        /// 不满意
        Dissatisfied = "dissatisfied",
    }
}

keyed_enum! {
    /// Who acts, as far as the machine is concerned.
    pub enum ActorRole: "order.role." {
        /// The resident or worker who reported the matter.
        Reporter = "reporter",
        /// 受理员 (also does 回访 in 12345 practice).
        Acceptor = "acceptor",
        /// 派遣员
        Dispatcher = "dispatcher",
        /// Unit staff: 部门办理人, 网格员.
        Handler = "handler",
        /// 核查员 / 监督员
        Verifier = "verifier",
        /// 值班长 / leaders.
        Supervisor = "supervisor",
        /// Timers, rules and feeds (12345 import, deliberation results).
        System = "system",
    }
}

keyed_enum! {
    /// The fieldless discriminant of [`Action`].
    pub enum ActionKind: "order.action." {
        /// 受理
        Accept = "accept",
        /// 不予受理
        Reject = "reject",
        /// 并单
        Merge = "merge",
        /// 撤回
        Withdraw = "withdraw",
        /// 派单
        Dispatch = "dispatch",
        /// 签收
        Sign = "sign",
        /// 处置 (a progress note; does not change state)
        Handle = "handle",
        /// 反馈
        ReportBack = "report_back",
        /// 核查通过 (办结)
        VerifyPass = "verify_pass",
        /// 核查不通过 (返工)
        VerifyFail = "verify_fail",
        /// 回访
        FollowUp = "follow_up",
        /// 即报即办: the reporting grid worker handled a small matter on the spot.
        HandleOnSpot = "handle_on_spot",
        /// 评单
        Evaluate = "evaluate",
        /// 归档: the evaluation window ended without a rating.
        Archive = "archive",
        /// 退单
        ReturnOrder = "return_order",
        /// 同意退单
        ApproveReturn = "approve_return",
        /// 驳回退单
        RejectReturn = "reject_return",
        /// 改派
        Reassign = "reassign",
        /// 申请延期
        RequestExtension = "request_extension",
        /// 同意延期
        ApproveExtension = "approve_extension",
        /// 驳回延期
        RefuseExtension = "refuse_extension",
        /// 超期 (reported by the timer service)
        MarkOverdue = "mark_overdue",
        /// 挂账
        Shelve = "shelve",
        /// 恢复
        Resume = "resume",
        /// 上报 / 升级
        Escalate = "escalate",
        /// 议单
        SendToDeliberation = "send_to_deliberation",
        /// 议事结果恢复办理
        ResumeFromDeliberation = "resume_from_deliberation",
        /// 督办 (notice)
        Supervise = "supervise",
        /// 催办 (notice)
        Urge = "urge",
        /// 督办终结: closed with a written conclusion while under supervision.
        Conclude = "conclude",
    }
}

impl ActionKind {
    /// The roles that may perform this action (in any state).
    pub fn roles(self) -> &'static [ActorRole] {
        use ActionKind as K;
        use ActorRole as R;
        match self {
            // A 12345 feed arrives already accepted by the hotline.
            K::Accept => &[R::Acceptor, R::System],
            K::Reject => &[R::Acceptor],
            K::Merge => &[R::Acceptor, R::Dispatcher],
            K::Withdraw => &[R::Reporter],
            K::Dispatch => &[R::Dispatcher, R::Supervisor],
            K::Sign | K::Handle | K::ReportBack | K::ReturnOrder | K::RequestExtension => &[R::Handler],
            K::VerifyPass | K::VerifyFail => &[R::Verifier],
            K::FollowUp => &[R::Acceptor, R::Verifier],
            // The reporting worker's own unit; whether the category allows it
            // and the person is that unit's is the caller's check.
            K::HandleOnSpot => &[R::Handler],
            // The resident rates in the portal, or the visitor records the rating.
            K::Evaluate => &[R::Reporter, R::Acceptor, R::Verifier],
            K::Archive => &[R::Supervisor, R::System],
            K::ApproveReturn
            | K::RejectReturn
            | K::Reassign
            | K::ApproveExtension
            | K::RefuseExtension
            | K::Shelve
            | K::Resume
            | K::SendToDeliberation => &[R::Dispatcher, R::Supervisor],
            // The deliberation module may feed the resolution back itself.
            K::ResumeFromDeliberation => &[R::Dispatcher, R::Supervisor, R::System],
            // By hand, or by rule when overdue.
            K::Escalate => &[R::Dispatcher, R::Supervisor, R::System],
            K::MarkOverdue => &[R::System],
            K::Supervise | K::Conclude => &[R::Supervisor],
            K::Urge => &[R::Dispatcher, R::Supervisor, R::System],
        }
    }
}

/// An action with its data. JSON: `{"action":"dispatch","lead_unit":3,...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Accept,
    Reject {
        reason: String,
    },
    /// Merge this (duplicate) order into the master order `into`.
    Merge {
        into: i64,
    },
    Withdraw {
        reason: String,
    },
    Dispatch {
        lead_unit: i64,
        #[serde(default)]
        assisting: Vec<i64>,
        /// Why the dispatch departs from the dispatch catalogue, if it does.
        #[serde(default)]
        override_reason: Option<String>,
    },
    Sign,
    Handle {
        note: String,
        #[serde(default)]
        attachments: Vec<i64>,
    },
    ReportBack {
        result: String,
        #[serde(default)]
        attachments: Vec<i64>,
    },
    VerifyPass {
        #[serde(default)]
        attachments: Vec<i64>,
    },
    VerifyFail {
        reason: String,
        #[serde(default)]
        attachments: Vec<i64>,
    },
    /// A 回访 note; with an `outcome`, the note may be left out unless the
    /// resident was not satisfied.
    FollowUp {
        #[serde(default)]
        note: String,
        #[serde(default)]
        outcome: Option<FollowUpOutcome>,
    },
    /// 即报即办: reported and handled in one step by the reporter's unit
    /// `unit`, with the photos after the work.
    HandleOnSpot {
        unit: i64,
        result: String,
        #[serde(default)]
        attachments: Vec<i64>,
    },
    /// The rating is an explicit choice (a missing one is refused, never
    /// read as 满意); 不满意 needs a reason picked or a comment (the unit
    /// must know what to redo).
    Evaluate {
        #[serde(default)]
        rating: Option<Rating>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reasons: Vec<EvalReason>,
        #[serde(default)]
        comment: Option<String>,
    },
    Archive,
    ReturnOrder {
        reason: String,
    },
    /// `Some(unit)` reassigns at once (改派); `None` sends it back to 待派单.
    ApproveReturn {
        #[serde(default)]
        reassign_to: Option<i64>,
    },
    RejectReturn {
        reason: String,
    },
    Reassign {
        lead_unit: i64,
        #[serde(default)]
        assisting: Vec<i64>,
        reason: String,
    },
    /// `days` are working days added to the running deadline.
    RequestExtension {
        days: u32,
        reason: String,
    },
    ApproveExtension,
    RefuseExtension {
        reason: String,
    },
    MarkOverdue,
    Shelve {
        reason: String,
    },
    Resume,
    Escalate {
        reason: String,
    },
    SendToDeliberation {
        reason: String,
    },
    ResumeFromDeliberation {
        resolution: String,
    },
    Supervise {
        note: String,
    },
    Urge {
        note: String,
    },
    Conclude {
        reason: String,
    },
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        use ActionKind as K;
        match self {
            Action::Accept => K::Accept,
            Action::Reject { .. } => K::Reject,
            Action::Merge { .. } => K::Merge,
            Action::Withdraw { .. } => K::Withdraw,
            Action::Dispatch { .. } => K::Dispatch,
            Action::Sign => K::Sign,
            Action::Handle { .. } => K::Handle,
            Action::ReportBack { .. } => K::ReportBack,
            Action::VerifyPass { .. } => K::VerifyPass,
            Action::VerifyFail { .. } => K::VerifyFail,
            Action::FollowUp { .. } => K::FollowUp,
            Action::HandleOnSpot { .. } => K::HandleOnSpot,
            Action::Evaluate { .. } => K::Evaluate,
            Action::Archive => K::Archive,
            Action::ReturnOrder { .. } => K::ReturnOrder,
            Action::ApproveReturn { .. } => K::ApproveReturn,
            Action::RejectReturn { .. } => K::RejectReturn,
            Action::Reassign { .. } => K::Reassign,
            Action::RequestExtension { .. } => K::RequestExtension,
            Action::ApproveExtension => K::ApproveExtension,
            Action::RefuseExtension { .. } => K::RefuseExtension,
            Action::MarkOverdue => K::MarkOverdue,
            Action::Shelve { .. } => K::Shelve,
            Action::Resume => K::Resume,
            Action::Escalate { .. } => K::Escalate,
            Action::SendToDeliberation { .. } => K::SendToDeliberation,
            Action::ResumeFromDeliberation { .. } => K::ResumeFromDeliberation,
            Action::Supervise { .. } => K::Supervise,
            Action::Urge { .. } => K::Urge,
            Action::Conclude { .. } => K::Conclude,
        }
    }

    /// The free text of the action (reason, note, result, comment or
    /// resolution), for the event row's `reason` column.
    pub fn text(&self) -> Option<&str> {
        match self {
            Action::Reject { reason }
            | Action::Withdraw { reason }
            | Action::VerifyFail { reason, .. }
            | Action::ReturnOrder { reason }
            | Action::RejectReturn { reason }
            | Action::Reassign { reason, .. }
            | Action::RequestExtension { reason, .. }
            | Action::RefuseExtension { reason }
            | Action::Shelve { reason }
            | Action::Escalate { reason }
            | Action::SendToDeliberation { reason }
            | Action::Conclude { reason } => Some(reason),
            Action::FollowUp { note, .. } => (!blank(note)).then_some(note.as_str()),
            Action::Handle { note, .. } | Action::Supervise { note } | Action::Urge { note } => Some(note),
            Action::ReportBack { result, .. } | Action::HandleOnSpot { result, .. } => Some(result),
            Action::ResumeFromDeliberation { resolution } => Some(resolution),
            Action::Evaluate { comment, .. } => comment.as_deref(),
            Action::Dispatch { override_reason, .. } => override_reason.as_deref(),
            Action::Accept
            | Action::Merge { .. }
            | Action::Sign
            | Action::VerifyPass { .. }
            | Action::Archive
            | Action::ApproveReturn { .. }
            | Action::ApproveExtension
            | Action::MarkOverdue
            | Action::Resume => None,
        }
    }

    /// Attachment (file) ids carried by the action.
    pub fn attachments(&self) -> &[i64] {
        match self {
            Action::ReportBack { attachments, .. }
            | Action::HandleOnSpot { attachments, .. }
            | Action::Handle { attachments, .. }
            | Action::VerifyPass { attachments }
            | Action::VerifyFail { attachments, .. } => attachments,
            _ => &[],
        }
    }
}

/// A 延期 request awaiting a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExtensionRequest {
    /// Working days asked for.
    pub days: u32,
    pub reason: String,
}

/// The most working days one extension may ask for. A sanity bound against
/// typos, not policy: local rules set tighter limits in the caller.
pub const MAX_EXTENSION_DAYS: u32 = 365;

/// The aggregate derived from an order's events. Build it only with
/// [`Order::new`], [`apply`] and [`replay`]; a stored snapshot can be checked
/// with [`Order::check_invariants`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    pub state: State,
    /// The level whose centre currently owns the order.
    pub level: Level,
    /// 主办: set by dispatch/reassign; cleared when the order goes back to 待派单.
    pub lead_unit: Option<i64>,
    /// 协办
    pub assisting_units: Vec<i64>,
    /// In a paused state (挂账, 议单, 退单待审): the exact state to go back to.
    pub resume_to: Option<State>,
    /// In 退单待审: the unit that asked to return the order.
    pub returned_by: Option<i64>,
    /// A 延期 request awaiting a decision.
    pub extension_pending: Option<ExtensionRequest>,
    /// Approved extensions (延期率 counts orders where this is > 0).
    pub extension_count: u32,
    /// Working days granted by all approved extensions.
    pub extension_days: u32,
    /// The running (or paused) deadline has passed.
    pub overdue: bool,
    /// 返工: failed verifications.
    pub rework_count: u32,
    /// 重办: reopened after 不满意; at most 1.
    pub reopen_count: u32,
    pub evaluation_count: u32,
    pub dissatisfied_count: u32,
    /// The most recent rating.
    pub rating: Option<Rating>,
    /// Approved returns (退单); a measure of dispatch accuracy.
    pub return_count: u32,
    /// 督办 notices.
    pub supervise_count: u32,
    /// 催办 notices.
    pub urge_count: u32,
    /// The master order, once merged.
    pub merged_into: Option<i64>,
    /// 即报即办: closed by the reporting unit on the spot (即报即办率).
    #[serde(default)]
    pub on_spot: bool,
    /// 重办 after a 回访 call found the resident dissatisfied before they
    /// rated it themselves.
    #[serde(default)]
    pub reopened_by_call: bool,
}

impl Order {
    /// A new order awaiting 受理 at `level` (the level of the centre it was
    /// reported to).
    pub fn new(level: Level) -> Order {
        Order {
            state: State::PendingAccept,
            level,
            lead_unit: None,
            assisting_units: Vec::new(),
            resume_to: None,
            returned_by: None,
            extension_pending: None,
            extension_count: 0,
            extension_days: 0,
            overdue: false,
            rework_count: 0,
            reopen_count: 0,
            evaluation_count: 0,
            dissatisfied_count: 0,
            rating: None,
            return_count: 0,
            supervise_count: 0,
            urge_count: 0,
            merged_into: None,
            on_spot: false,
            reopened_by_call: false,
        }
    }

    /// The state that decides whether a unit is assigned and a deadline
    /// exists: the state itself, or the one a paused order returns to.
    fn effective_state(&self) -> State {
        match (self.state.is_paused(), self.resume_to) {
            (true, Some(s)) => s,
            _ => self.state,
        }
    }

    /// Checks the consistency rules that [`apply`] maintains. Returns the
    /// first broken rule.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        use State as S;
        fn ensure(ok: bool, rule: &'static str) -> Result<(), &'static str> {
            if ok {
                Ok(())
            } else {
                Err(rule)
            }
        }

        // Pauses and where they return to.
        ensure(self.resume_to.is_some() == self.state.is_paused(), "resume_to is set exactly in paused states")?;
        if let Some(back) = self.resume_to {
            let ok = match self.state {
                S::ReturnRequested => back.has_deadline(),
                _ => matches!(back, S::PendingDispatch | S::PendingSign | S::Handling | S::Supervision),
            };
            ensure(ok, "resume_to is a state the pause may return to")?;
        }
        ensure(
            self.returned_by.is_some() == (self.state == S::ReturnRequested),
            "returned_by is set exactly while a return is under review",
        )?;
        if self.returned_by.is_some() {
            ensure(self.returned_by == self.lead_unit, "the returning unit is the lead unit")?;
        }

        // Assignment.
        let effective = self.effective_state();
        match effective {
            S::PendingAccept | S::Rejected | S::PendingDispatch => {
                ensure(self.lead_unit.is_none(), "no lead unit before dispatch")?
            }
            S::PendingSign
            | S::Handling
            | S::ReturnRequested
            | S::PendingVerify
            | S::PendingEvaluation
            | S::Closed
            | S::Supervision => ensure(self.lead_unit.is_some(), "a lead unit once dispatched")?,
            S::Withdrawn | S::Merged | S::Shelved | S::InDeliberation => {}
        }
        if self.lead_unit.is_none() {
            ensure(self.assisting_units.is_empty(), "no assisting units without a lead unit")?;
        }
        ensure(
            self.lead_unit.is_none_or(|lead| !self.assisting_units.contains(&lead)),
            "the lead unit is not also assisting",
        )?;
        let mut units = self.assisting_units.clone();
        units.sort_unstable();
        units.dedup();
        ensure(units.len() == self.assisting_units.len(), "assisting units are distinct")?;

        // Deadlines and extensions.
        if let Some(request) = &self.extension_pending {
            ensure(self.state.has_deadline(), "an extension is pending only while a deadline runs")?;
            ensure(
                (1..=MAX_EXTENSION_DAYS).contains(&request.days) && !blank(&request.reason),
                "a pending extension is well-formed",
            )?;
        }
        if self.overdue {
            ensure(effective.has_deadline(), "overdue only with a running or paused deadline")?;
        }
        ensure(self.extension_days >= self.extension_count, "every approved extension grants at least one day")?;

        // Evaluations.
        let heard_dissatisfied = self.dissatisfied_count + self.reopened_by_call as u32;
        ensure(self.reopen_count == heard_dissatisfied.min(1), "the first dissatisfaction reopens, once")?;
        ensure(self.dissatisfied_count <= self.evaluation_count, "dissatisfied ratings are evaluations")?;
        ensure(self.rating.is_some() == (self.evaluation_count > 0), "the last rating is kept once rated")?;
        if effective == S::Supervision {
            ensure(
                heard_dissatisfied >= 2 && self.rating == Some(Rating::Dissatisfied),
                "supervision follows a second dissatisfaction, the last a rating",
            )?;
        }

        ensure(self.merged_into.is_some() == (self.state == S::Merged), "merged_into is set exactly when merged")?;
        if self.on_spot {
            ensure(self.state == S::Closed && self.evaluation_count == 0, "an order handled on the spot is closed")?;
        }
        Ok(())
    }
}

/// What the deadline timers should do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockEffect {
    /// Start a fresh sign deadline (dispatch, reassign).
    StartSign,
    /// Start a fresh handling deadline (sign, rework, reopen).
    StartHandle,
    /// No deadline runs any more; stop whatever runs.
    Stop,
    /// Keep the remaining time and stop counting (挂账, 议单, 退单待审).
    Pause,
    /// Continue counting the remaining time (none if nothing was paused).
    Resume,
    /// Add the approved days ([`Order::extension_days`] grows) to the deadline.
    Extend,
    /// Timers unchanged.
    None,
}

/// Which timer change follows a transition `from` → `to` by `action`.
pub fn clock_effect(from: State, to: State, action: ActionKind) -> ClockEffect {
    use ActionKind as K;
    if from == to {
        return match action {
            K::ApproveExtension => ClockEffect::Extend,
            _ => ClockEffect::None,
        };
    }
    // Checked first: resuming to 待签收/办理中 continues the old deadline
    // rather than starting a new one.
    if matches!(action, K::Resume | K::ResumeFromDeliberation | K::RejectReturn) {
        return ClockEffect::Resume;
    }
    match to {
        State::PendingSign => ClockEffect::StartSign,
        State::Handling => ClockEffect::StartHandle,
        State::Shelved | State::InDeliberation | State::ReturnRequested => ClockEffect::Pause,
        _ => ClockEffect::Stop,
    }
}

/// The free-text fields the machine requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextField {
    Reason,
    OverrideReason,
    Note,
    Result,
    Comment,
    Resolution,
}

impl TextField {
    pub fn as_str(self) -> &'static str {
        match self {
            TextField::Reason => "reason",
            TextField::OverrideReason => "override_reason",
            TextField::Note => "note",
            TextField::Result => "result",
            TextField::Comment => "comment",
            TextField::Resolution => "resolution",
        }
    }
}

/// How the API should answer a [`MachineError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The role may never do this (403).
    Forbidden,
    /// Not now, in this state (409).
    Conflict,
    /// The action's data is wrong (422).
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MachineError {
    #[error("role {} may not {}", role.as_str(), action.as_str())]
    RoleNotAllowed { role: ActorRole, action: ActionKind },
    #[error("{} is not allowed in state {}", action.as_str(), state.as_str())]
    ActionNotAllowed { action: ActionKind, state: State },
    #[error("{} must not be blank", field.as_str())]
    Blank { field: TextField },
    #[error("the order is already at the top level")]
    AlreadyTopLevel,
    #[error("an extension request is already pending")]
    ExtensionPending,
    #[error("no extension request is pending")]
    NoExtensionPending,
    #[error("the deadline has passed; extensions must be requested before it")]
    ExtensionAfterDeadline,
    #[error("an extension must be 1..={MAX_EXTENSION_DAYS} working days, not {days}")]
    ExtensionDays { days: u32 },
    #[error("the order is already marked overdue")]
    AlreadyOverdue,
    #[error("{field} must be a positive id, not {id}")]
    InvalidId { field: &'static str, id: i64 },
    #[error("lead unit {unit} is also listed as assisting")]
    LeadAlsoAssisting { unit: i64 },
    #[error("assisting unit {unit} is listed twice")]
    DuplicateAssisting { unit: i64 },
    #[error("unit {unit} already has the order; choose another unit")]
    SameUnit { field: &'static str, unit: i64 },
    #[error("an evaluation needs a rating")]
    RatingRequired,
    #[error("a dissatisfied evaluation needs a reason or a comment")]
    DissatisfiedReasonRequired,
    #[error("reasons go with a dissatisfied rating only")]
    ReasonsOnlyDissatisfied,
}

impl MachineError {
    /// The stable code, also the message-catalogue key.
    pub fn code(&self) -> &'static str {
        match self {
            MachineError::RoleNotAllowed { .. } => "order.role_not_allowed",
            MachineError::ActionNotAllowed { .. } => "order.action_not_allowed",
            MachineError::Blank { field } => match field {
                TextField::Reason | TextField::OverrideReason => "order.reason_required",
                TextField::Note => "order.note_required",
                TextField::Result => "order.result_required",
                TextField::Comment => "order.comment_required",
                TextField::Resolution => "order.resolution_required",
            },
            MachineError::AlreadyTopLevel => "order.already_top_level",
            MachineError::ExtensionPending => "order.extension_pending",
            MachineError::NoExtensionPending => "order.no_extension_pending",
            MachineError::ExtensionAfterDeadline => "order.extension_after_deadline",
            MachineError::ExtensionDays { .. } => "order.extension_days_invalid",
            MachineError::AlreadyOverdue => "order.already_overdue",
            MachineError::InvalidId { .. } => "order.invalid_id",
            MachineError::LeadAlsoAssisting { .. } => "order.lead_also_assisting",
            MachineError::DuplicateAssisting { .. } => "order.duplicate_assisting",
            MachineError::SameUnit { .. } => "order.same_unit",
            MachineError::RatingRequired => "order.rating_required",
            MachineError::DissatisfiedReasonRequired => "order.dissatisfied_reason_required",
            MachineError::ReasonsOnlyDissatisfied => "order.reasons_only_dissatisfied",
        }
    }

    /// The offending field of the action, if one is to blame.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            MachineError::Blank { field } => Some(field.as_str()),
            MachineError::ExtensionDays { .. } => Some("days"),
            MachineError::InvalidId { field, .. } | MachineError::SameUnit { field, .. } => Some(field),
            MachineError::LeadAlsoAssisting { .. } | MachineError::DuplicateAssisting { .. } => Some("assisting"),
            MachineError::RatingRequired => Some("rating"),
            MachineError::DissatisfiedReasonRequired | MachineError::ReasonsOnlyDissatisfied => Some("reasons"),
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            MachineError::RoleNotAllowed { .. } => ErrorClass::Forbidden,
            MachineError::ActionNotAllowed { .. }
            | MachineError::AlreadyTopLevel
            | MachineError::ExtensionPending
            | MachineError::NoExtensionPending
            | MachineError::ExtensionAfterDeadline
            | MachineError::AlreadyOverdue => ErrorClass::Conflict,
            MachineError::Blank { .. }
            | MachineError::ExtensionDays { .. }
            | MachineError::InvalidId { .. }
            | MachineError::LeadAlsoAssisting { .. }
            | MachineError::DuplicateAssisting { .. }
            | MachineError::SameUnit { .. }
            | MachineError::RatingRequired
            | MachineError::DissatisfiedReasonRequired
            | MachineError::ReasonsOnlyDissatisfied => ErrorClass::Invalid,
        }
    }

    /// Every code [`MachineError::code`] can return.
    pub const CODES: &'static [&'static str] = &[
        "order.role_not_allowed",
        "order.action_not_allowed",
        "order.reason_required",
        "order.note_required",
        "order.result_required",
        "order.comment_required",
        "order.resolution_required",
        "order.already_top_level",
        "order.extension_pending",
        "order.no_extension_pending",
        "order.extension_after_deadline",
        "order.extension_days_invalid",
        "order.already_overdue",
        "order.invalid_id",
        "order.lead_also_assisting",
        "order.duplicate_assisting",
        "order.same_unit",
        "order.rating_required",
        "order.dissatisfied_reason_required",
        "order.reasons_only_dissatisfied",
    ];
}

/// One accepted action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    /// Equal to `from` for notices (督办, 催办, 处置 notes, 回访, 延期 requests…).
    pub to: State,
    pub action: ActionKind,
    /// What the deadline timers should do.
    pub clock: ClockEffect,
    pub new_order: Order,
}

/// A stored event that the machine refuses: the log is corrupt or was
/// written by a different version of the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} cannot be replayed: {error}")]
pub struct ReplayError {
    /// Zero-based position of the refused event.
    pub index: usize,
    pub error: MachineError,
}

impl ReplayError {
    pub fn code(&self) -> &'static str {
        self.error.code()
    }
}

/// Whether `kind` may happen to `order` now (roles aside).
fn admissible(order: &Order, kind: ActionKind) -> Result<(), MachineError> {
    use ActionKind as K;
    use State as S;
    let state = order.state;
    let in_states = |states: &[State]| states.contains(&state);
    let ok = match kind {
        K::Accept | K::Reject => in_states(&[S::PendingAccept]),
        K::Merge => in_states(&[S::PendingAccept, S::PendingDispatch]),
        // Only before handling starts, i.e. before the unit signs.
        K::Withdraw => in_states(&[S::PendingAccept, S::PendingDispatch, S::PendingSign]),
        K::Dispatch => in_states(&[S::PendingDispatch]),
        K::Sign => in_states(&[S::PendingSign]),
        K::Handle | K::ReportBack => in_states(&[S::Handling]),
        K::ReturnOrder => state.has_deadline(),
        K::RequestExtension => {
            if !state.has_deadline() {
                false
            } else if order.extension_pending.is_some() {
                return Err(MachineError::ExtensionPending);
            } else if order.overdue {
                return Err(MachineError::ExtensionAfterDeadline);
            } else {
                true
            }
        }
        K::ApproveExtension | K::RefuseExtension => {
            if !state.has_deadline() {
                false
            } else if order.extension_pending.is_none() {
                return Err(MachineError::NoExtensionPending);
            } else {
                true
            }
        }
        K::MarkOverdue => {
            if !state.has_deadline() {
                false
            } else if order.overdue {
                return Err(MachineError::AlreadyOverdue);
            } else {
                true
            }
        }
        K::VerifyPass | K::VerifyFail => in_states(&[S::PendingVerify]),
        // 回访 also reaches residents whose orders are already closed.
        K::FollowUp => in_states(&[S::PendingEvaluation, S::Closed]),
        K::Evaluate | K::Archive => in_states(&[S::PendingEvaluation]),
        // Only before anyone accepted it: then it is the centre's to dispatch.
        K::HandleOnSpot => in_states(&[S::PendingAccept]),
        K::ApproveReturn | K::RejectReturn => in_states(&[S::ReturnRequested]) && order.resume_to.is_some(),
        K::Reassign => in_states(&[S::PendingSign, S::Handling, S::Supervision]),
        // Pauses do not nest: one `resume_to` slot.
        K::Shelve | K::SendToDeliberation => {
            in_states(&[S::PendingDispatch, S::PendingSign, S::Handling, S::Supervision])
        }
        K::Resume => in_states(&[S::Shelved]) && order.resume_to.is_some(),
        K::ResumeFromDeliberation => in_states(&[S::InDeliberation]) && order.resume_to.is_some(),
        K::Escalate => {
            if !in_states(&[S::PendingDispatch, S::PendingSign, S::Handling, S::ReturnRequested, S::Supervision]) {
                false
            } else if order.level.next().is_none() {
                return Err(MachineError::AlreadyTopLevel);
            } else {
                true
            }
        }
        K::Supervise => !state.is_terminal(),
        // 催办 goes to whoever the order is waiting for inside the system.
        K::Urge => in_states(&[S::PendingDispatch, S::PendingSign, S::Handling, S::ReturnRequested, S::PendingVerify]),
        K::Conclude => in_states(&[S::Supervision]),
    };
    if ok {
        Ok(())
    } else {
        Err(MachineError::ActionNotAllowed { action: kind, state })
    }
}

/// The actions `role` may perform on `order` now. The UI and the API offer
/// exactly these; [`apply`] refuses every other one.
pub fn allowed_actions(order: &Order, role: ActorRole) -> Vec<ActionKind> {
    ActionKind::ALL
        .iter()
        .copied()
        .filter(|kind| kind.roles().contains(&role) && admissible(order, *kind).is_ok())
        .collect()
}

fn blank(text: &str) -> bool {
    // `trim` also removes U+3000 (全角空格), which Chinese input methods produce.
    text.trim().is_empty()
}

fn require(text: &str, field: TextField) -> Result<String, MachineError> {
    if blank(text) {
        Err(MachineError::Blank { field })
    } else {
        Ok(text.trim().to_string())
    }
}

fn positive(field: &'static str, id: i64) -> Result<(), MachineError> {
    if id > 0 {
        Ok(())
    } else {
        Err(MachineError::InvalidId { field, id })
    }
}

fn check_units(lead: i64, assisting: &[i64]) -> Result<(), MachineError> {
    positive("lead_unit", lead)?;
    for (i, &unit) in assisting.iter().enumerate() {
        positive("assisting", unit)?;
        if unit == lead {
            return Err(MachineError::LeadAlsoAssisting { unit });
        }
        if assisting[..i].contains(&unit) {
            return Err(MachineError::DuplicateAssisting { unit });
        }
    }
    Ok(())
}

/// Applies `action` by `role` to `order`. Pure: `order` is not changed; the
/// result carries the new order.
pub fn apply(order: &Order, role: ActorRole, action: &Action) -> Result<Transition, MachineError> {
    let kind = action.kind();
    if !kind.roles().contains(&role) {
        return Err(MachineError::RoleNotAllowed { role, action: kind });
    }
    admissible(order, kind)?;

    let from = order.state;
    let mut next = order.clone();
    match action {
        Action::Accept => next.state = State::PendingDispatch,
        Action::Reject { reason } => {
            require(reason, TextField::Reason)?;
            next.state = State::Rejected;
        }
        Action::Merge { into } => {
            positive("into", *into)?;
            next.merged_into = Some(*into);
            next.state = State::Merged;
        }
        Action::Withdraw { reason } => {
            require(reason, TextField::Reason)?;
            next.state = State::Withdrawn;
        }
        Action::Dispatch { lead_unit, assisting, override_reason } => {
            if let Some(why) = override_reason {
                require(why, TextField::OverrideReason)?;
            }
            check_units(*lead_unit, assisting)?;
            next.lead_unit = Some(*lead_unit);
            next.assisting_units = assisting.clone();
            next.state = State::PendingSign;
        }
        Action::Sign => next.state = State::Handling,
        Action::Handle { note, attachments } => {
            require(note, TextField::Note)?;
            attachments.iter().try_for_each(|&id| positive("attachments", id))?;
        }
        Action::ReportBack { result, attachments } => {
            require(result, TextField::Result)?;
            attachments.iter().try_for_each(|&id| positive("attachments", id))?;
            next.state = State::PendingVerify;
        }
        Action::VerifyPass { attachments } => {
            attachments.iter().try_for_each(|&id| positive("attachments", id))?;
            // 办结 happens here; 回访/评单 follow.
            next.state = State::PendingEvaluation;
        }
        Action::VerifyFail { reason, attachments } => {
            require(reason, TextField::Reason)?;
            attachments.iter().try_for_each(|&id| positive("attachments", id))?;
            next.rework_count += 1;
            next.state = State::Handling;
        }
        Action::FollowUp { note, outcome } => {
            if matches!(outcome, None | Some(FollowUpOutcome::Dissatisfied)) {
                require(note, TextField::Note)?;
            }
            // A resident who tells the caller they are dissatisfied before
            // rating it sends the order back to be done again (重办), once,
            // as their own 不满意 would; afterwards the call is recorded only.
            if *outcome == Some(FollowUpOutcome::Dissatisfied)
                && from == State::PendingEvaluation
                && next.reopen_count == 0
            {
                next.reopen_count = 1;
                next.reopened_by_call = true;
                next.state = State::Handling;
            }
        }
        Action::HandleOnSpot { unit, result, attachments } => {
            require(result, TextField::Result)?;
            positive("unit", *unit)?;
            attachments.iter().try_for_each(|&id| positive("attachments", id))?;
            next.lead_unit = Some(*unit);
            next.on_spot = true;
            next.state = State::Closed;
        }
        Action::Evaluate { rating, reasons, comment } => {
            let rating = rating.as_ref().ok_or(MachineError::RatingRequired)?;
            let commented = comment.as_deref().is_some_and(|c| !blank(c));
            if *rating == Rating::Dissatisfied && !commented && reasons.is_empty() {
                return Err(MachineError::DissatisfiedReasonRequired);
            }
            if *rating != Rating::Dissatisfied && !reasons.is_empty() {
                return Err(MachineError::ReasonsOnlyDissatisfied);
            }
            next.evaluation_count += 1;
            next.rating = Some(*rating);
            next.state = match rating {
                Rating::Satisfied | Rating::FairlySatisfied => State::Closed,
                Rating::Dissatisfied => {
                    next.dissatisfied_count += 1;
                    if next.reopen_count == 0 {
                        // 重办: once, by the same units.
                        next.reopen_count = 1;
                        State::Handling
                    } else {
                        State::Supervision
                    }
                }
            };
        }
        Action::Archive => next.state = State::Closed,
        Action::ReturnOrder { reason } => {
            require(reason, TextField::Reason)?;
            next.resume_to = Some(from);
            next.returned_by = order.lead_unit;
            next.state = State::ReturnRequested;
        }
        Action::ApproveReturn { reassign_to } => {
            match reassign_to {
                Some(unit) => {
                    positive("reassign_to", *unit)?;
                    if Some(*unit) == order.returned_by {
                        return Err(MachineError::SameUnit { field: "reassign_to", unit: *unit });
                    }
                    // A former assisting unit that becomes lead stops assisting.
                    next.assisting_units.retain(|u| u != unit);
                    next.lead_unit = Some(*unit);
                    next.state = State::PendingSign;
                }
                None => {
                    next.lead_unit = None;
                    next.assisting_units.clear();
                    next.state = State::PendingDispatch;
                }
            }
            next.return_count += 1;
            next.resume_to = None;
            next.returned_by = None;
        }
        Action::RejectReturn { reason } => {
            require(reason, TextField::Reason)?;
            next.state = order.resume_to.unwrap_or(from);
            next.resume_to = None;
            next.returned_by = None;
        }
        Action::Reassign { lead_unit, assisting, reason } => {
            require(reason, TextField::Reason)?;
            check_units(*lead_unit, assisting)?;
            // Under supervision, sending it back to the same unit is the
            // supervisor's order to redo it; elsewhere it changes nothing.
            if from != State::Supervision && order.lead_unit == Some(*lead_unit) {
                return Err(MachineError::SameUnit { field: "lead_unit", unit: *lead_unit });
            }
            next.lead_unit = Some(*lead_unit);
            next.assisting_units = assisting.clone();
            next.state = State::PendingSign;
        }
        Action::RequestExtension { days, reason } => {
            let reason = require(reason, TextField::Reason)?;
            if !(1..=MAX_EXTENSION_DAYS).contains(days) {
                return Err(MachineError::ExtensionDays { days: *days });
            }
            next.extension_pending = Some(ExtensionRequest { days: *days, reason });
        }
        Action::ApproveExtension => {
            if let Some(request) = next.extension_pending.take() {
                next.extension_count += 1;
                next.extension_days += request.days;
            }
        }
        Action::RefuseExtension { reason } => {
            require(reason, TextField::Reason)?;
            next.extension_pending = None;
        }
        Action::MarkOverdue => next.overdue = true,
        Action::Shelve { reason } => {
            require(reason, TextField::Reason)?;
            next.resume_to = Some(from);
            next.state = State::Shelved;
        }
        Action::Resume => {
            next.state = order.resume_to.unwrap_or(from);
            next.resume_to = None;
        }
        Action::Escalate { reason } => {
            require(reason, TextField::Reason)?;
            // `admissible` refused the top level already.
            next.level = order.level.next().unwrap_or(order.level);
            next.lead_unit = None;
            next.assisting_units.clear();
            next.resume_to = None;
            next.returned_by = None;
            next.state = State::PendingDispatch;
        }
        Action::SendToDeliberation { reason } => {
            require(reason, TextField::Reason)?;
            next.resume_to = Some(from);
            next.state = State::InDeliberation;
        }
        Action::ResumeFromDeliberation { resolution } => {
            require(resolution, TextField::Resolution)?;
            next.state = order.resume_to.unwrap_or(from);
            next.resume_to = None;
        }
        Action::Supervise { note } => {
            require(note, TextField::Note)?;
            next.supervise_count += 1;
        }
        Action::Urge { note } => {
            require(note, TextField::Note)?;
            next.urge_count += 1;
        }
        Action::Conclude { reason } => {
            require(reason, TextField::Reason)?;
            next.state = State::Closed;
        }
    }

    let to = next.state;
    if to != from {
        // The request was about a deadline that no longer applies as asked.
        next.extension_pending = None;
    }
    let clock = clock_effect(from, to, kind);
    if matches!(clock, ClockEffect::StartSign | ClockEffect::StartHandle | ClockEffect::Stop | ClockEffect::Extend) {
        // A fresh, extended or absent deadline is not (yet) overdue; the
        // timer service reports again if it passes.
        next.overdue = false;
    }
    Ok(Transition { from, to, action: kind, clock, new_order: next })
}

/// Rebuilds an order created at `level` from its events, oldest first.
pub fn replay(level: Level, events: impl IntoIterator<Item = (ActorRole, Action)>) -> Result<Order, ReplayError> {
    let mut order = Order::new(level);
    for (index, (role, action)) in events.into_iter().enumerate() {
        order = apply(&order, role, &action).map_err(|error| ReplayError { index, error })?.new_order;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use ActorRole as R;
    use State as S;

    fn why() -> String {
        "理由".to_string()
    }

    /// Applies and asserts success and invariants; returns the transition.
    fn step(order: &mut Order, role: ActorRole, action: Action) -> Transition {
        let t =
            apply(order, role, &action).unwrap_or_else(|e| panic!("{action:?} by {role:?} in {:?}: {e}", order.state));
        t.new_order.check_invariants().unwrap();
        *order = t.new_order.clone();
        t
    }

    fn refused(order: &Order, role: ActorRole, action: Action) -> MachineError {
        apply(order, role, &action).expect_err("the action should be refused")
    }

    fn dispatch(lead: i64, assisting: &[i64]) -> Action {
        Action::Dispatch { lead_unit: lead, assisting: assisting.to_vec(), override_reason: None }
    }

    fn report() -> Action {
        Action::ReportBack { result: "已清理".into(), attachments: vec![7, 8] }
    }

    fn evaluate(rating: Rating) -> Action {
        Action::Evaluate { rating: Some(rating), reasons: vec![], comment: Some("说明".into()) }
    }

    /// A community order signed by unit 10 (assisted by 11).
    fn handling() -> Order {
        let mut o = Order::new(Level::Community);
        step(&mut o, R::Acceptor, Action::Accept);
        step(&mut o, R::Dispatcher, dispatch(10, &[11]));
        step(&mut o, R::Handler, Action::Sign);
        o
    }

    fn pending_evaluation() -> Order {
        let mut o = handling();
        step(&mut o, R::Handler, report());
        step(&mut o, R::Verifier, Action::VerifyPass { attachments: vec![] });
        o
    }

    #[test]
    fn happy_story() {
        let mut o = Order::new(Level::Community);
        let mut log = Vec::new();
        let mut go = |o: &mut Order, role, action: Action| {
            log.push((role, action.clone()));
            step(o, role, action)
        };
        assert_eq!(allowed_actions(&o, R::Acceptor), vec![ActionKind::Accept, ActionKind::Reject, ActionKind::Merge]);
        let t = go(&mut o, R::Acceptor, Action::Accept);
        assert_eq!((t.from, t.to), (S::PendingAccept, S::PendingDispatch));
        let t = go(&mut o, R::Dispatcher, dispatch(10, &[11, 12]));
        assert_eq!(t.clock, ClockEffect::StartSign);
        assert_eq!(o.lead_unit, Some(10));
        assert_eq!(o.assisting_units, vec![11, 12]);
        let t = go(&mut o, R::Handler, Action::Sign);
        assert_eq!((t.to, t.clock), (S::Handling, ClockEffect::StartHandle));
        let t = go(&mut o, R::Handler, Action::Handle { note: "到场处置".into(), attachments: vec![] });
        assert_eq!((t.from, t.to, t.clock), (S::Handling, S::Handling, ClockEffect::None));
        let t = go(&mut o, R::Handler, report());
        assert_eq!((t.to, t.clock), (S::PendingVerify, ClockEffect::Stop));
        let t = go(&mut o, R::Verifier, Action::VerifyPass { attachments: vec![9] });
        assert_eq!(t.to, S::PendingEvaluation);
        assert!(o.state.is_closed(), "办结 happens at verification");
        go(&mut o, R::Acceptor, Action::FollowUp { note: "电话回访".into(), outcome: None });
        let t = go(&mut o, R::Reporter, evaluate(Rating::Satisfied));
        assert_eq!(t.to, S::Closed);
        assert_eq!(o.rating, Some(Rating::Satisfied));
        for role in ActorRole::ALL {
            // A closed order may still be called back (回访), nothing more.
            let left = if matches!(role, R::Acceptor | R::Verifier) { vec![ActionKind::FollowUp] } else { vec![] };
            assert_eq!(allowed_actions(&o, *role), left, "{role:?}");
        }
        assert_eq!(replay(Level::Community, log).unwrap(), o);
    }

    #[test]
    fn reject_needs_a_reason() {
        let o = Order::new(Level::Community);
        for blank in ["", "   ", "\u{3000}\t\n"] {
            let e = refused(&o, R::Acceptor, Action::Reject { reason: blank.into() });
            assert_eq!(e.code(), "order.reason_required");
            assert_eq!(e.field(), Some("reason"));
        }
        let mut o = o;
        step(&mut o, R::Acceptor, Action::Reject { reason: why() });
        assert!(o.state.is_terminal());
    }

    #[test]
    fn return_then_reassign() {
        let mut o = handling();
        assert!(allowed_actions(&o, R::Handler).contains(&ActionKind::ReturnOrder));
        let t = step(&mut o, R::Handler, Action::ReturnOrder { reason: why() });
        assert_eq!((t.to, t.clock), (S::ReturnRequested, ClockEffect::Pause));
        assert_eq!(o.returned_by, Some(10));
        assert!(allowed_actions(&o, R::Handler).is_empty());
        assert_eq!(
            refused(&o, R::Handler, Action::ApproveReturn { reassign_to: Some(20) }).code(),
            "order.role_not_allowed"
        );
        assert_eq!(
            refused(&o, R::Dispatcher, Action::ApproveReturn { reassign_to: Some(10) }).code(),
            "order.same_unit"
        );

        // Rejected: back to the unit, exactly where it was, clock continues.
        let mut back = o.clone();
        let t = step(&mut back, R::Dispatcher, Action::RejectReturn { reason: why() });
        assert_eq!((t.to, t.clock), (S::Handling, ClockEffect::Resume));
        assert_eq!(back.lead_unit, Some(10));
        assert_eq!(back.returned_by, None);

        // Approved with 改派 to a former assisting unit.
        let t = step(&mut o, R::Dispatcher, Action::ApproveReturn { reassign_to: Some(11) });
        assert_eq!((t.to, t.clock), (S::PendingSign, ClockEffect::StartSign));
        assert_eq!(o.lead_unit, Some(11));
        assert!(o.assisting_units.is_empty());
        assert_eq!(o.return_count, 1);

        // Returned from 待签收 and approved without a new unit: 待派单.
        step(&mut o, R::Handler, Action::ReturnOrder { reason: why() });
        assert_eq!(o.resume_to, Some(S::PendingSign));
        let t = step(&mut o, R::Supervisor, Action::ApproveReturn { reassign_to: None });
        assert_eq!((t.to, t.clock), (S::PendingDispatch, ClockEffect::Stop));
        assert_eq!(o.lead_unit, None);
    }

    #[test]
    fn direct_reassign() {
        let mut o = handling();
        assert_eq!(
            refused(&o, R::Dispatcher, Action::Reassign { lead_unit: 10, assisting: vec![], reason: why() }).code(),
            "order.same_unit"
        );
        assert_eq!(
            refused(&o, R::Dispatcher, Action::Reassign { lead_unit: 12, assisting: vec![12], reason: why() }).code(),
            "order.lead_also_assisting"
        );
        let t = step(&mut o, R::Dispatcher, Action::Reassign { lead_unit: 12, assisting: vec![13], reason: why() });
        assert_eq!((t.to, t.clock), (S::PendingSign, ClockEffect::StartSign));
        assert_eq!((o.lead_unit, o.assisting_units.clone()), (Some(12), vec![13]));
    }

    #[test]
    fn dispatch_checks_units() {
        let mut o = Order::new(Level::Subdistrict);
        step(&mut o, R::System, Action::Accept);
        let cases = [
            (dispatch(0, &[]), "order.invalid_id"),
            (dispatch(1, &[-3]), "order.invalid_id"),
            (dispatch(1, &[1]), "order.lead_also_assisting"),
            (dispatch(1, &[2, 3, 2]), "order.duplicate_assisting"),
            (
                Action::Dispatch { lead_unit: 1, assisting: vec![], override_reason: Some(" ".into()) },
                "order.reason_required",
            ),
        ];
        for (action, code) in cases {
            assert_eq!(refused(&o, R::Dispatcher, action).code(), code);
        }
        step(
            &mut o,
            R::Dispatcher,
            Action::Dispatch {
                lead_unit: 1,
                assisting: vec![2],
                override_reason: Some("目录外事项，经会商确定".into()),
            },
        );
        assert_eq!(o.state, S::PendingSign);
    }

    #[test]
    fn extension_approved_and_refused() {
        let ask = |days| Action::RequestExtension { days, reason: "需协调物业".into() };
        let mut o = handling();
        assert_eq!(refused(&o, R::Dispatcher, Action::ApproveExtension).code(), "order.no_extension_pending");
        assert_eq!(refused(&o, R::Handler, ask(0)).code(), "order.extension_days_invalid");
        assert_eq!(refused(&o, R::Handler, ask(MAX_EXTENSION_DAYS + 1)).code(), "order.extension_days_invalid");
        let t = step(&mut o, R::Handler, ask(5));
        assert_eq!((t.from, t.to, t.clock), (S::Handling, S::Handling, ClockEffect::None));
        assert!(!allowed_actions(&o, R::Handler).contains(&ActionKind::RequestExtension));
        assert_eq!(refused(&o, R::Handler, ask(3)).code(), "order.extension_pending");
        assert_eq!(refused(&o, R::Handler, Action::ApproveExtension).code(), "order.role_not_allowed");
        let t = step(&mut o, R::Dispatcher, Action::ApproveExtension);
        assert_eq!(t.clock, ClockEffect::Extend);
        assert_eq!((o.extension_count, o.extension_days), (1, 5));
        assert!(o.extension_pending.is_none());

        // Refused: nothing granted, the unit may ask again.
        step(&mut o, R::Handler, ask(2));
        assert_eq!(
            refused(&o, R::Supervisor, Action::RefuseExtension { reason: "".into() }).code(),
            "order.reason_required"
        );
        step(&mut o, R::Supervisor, Action::RefuseExtension { reason: why() });
        assert_eq!((o.extension_count, o.extension_days), (1, 5));
        assert!(allowed_actions(&o, R::Handler).contains(&ActionKind::RequestExtension));

        // Only before the deadline.
        step(&mut o, R::System, Action::MarkOverdue);
        assert_eq!(refused(&o, R::System, Action::MarkOverdue).code(), "order.already_overdue");
        assert!(!allowed_actions(&o, R::Handler).contains(&ActionKind::RequestExtension));
        assert_eq!(refused(&o, R::Handler, ask(2)).code(), "order.extension_after_deadline");

        // Asked in time, approved after the deadline passed: no longer overdue.
        let mut o = handling();
        step(&mut o, R::Handler, ask(2));
        step(&mut o, R::System, Action::MarkOverdue);
        step(&mut o, R::Dispatcher, Action::ApproveExtension);
        assert!(!o.overdue);

        // A pending request lapses when the order moves on.
        let mut o = handling();
        step(&mut o, R::Handler, ask(2));
        step(&mut o, R::Handler, report());
        assert!(o.extension_pending.is_none());

        // Not where no deadline runs.
        let o = pending_evaluation();
        assert_eq!(refused(&o, R::Handler, ask(2)).code(), "order.action_not_allowed");
    }

    #[test]
    fn rework_after_failed_verification() {
        let mut o = handling();
        step(&mut o, R::Handler, report());
        assert_eq!(
            refused(&o, R::Verifier, Action::VerifyFail { reason: " ".into(), attachments: vec![] }).code(),
            "order.reason_required"
        );
        let t = step(&mut o, R::Verifier, Action::VerifyFail { reason: "现场仍有垃圾".into(), attachments: vec![3] });
        assert_eq!((t.to, t.clock), (S::Handling, ClockEffect::StartHandle));
        assert_eq!((o.rework_count, o.lead_unit), (1, Some(10)));
        step(&mut o, R::Handler, report());
        step(&mut o, R::Verifier, Action::VerifyPass { attachments: vec![] });
        assert_eq!((o.state, o.rework_count), (S::PendingEvaluation, 1));
    }

    #[test]
    fn reopen_once_then_supervision() {
        let mut o = pending_evaluation();
        let unexplained = Action::Evaluate { rating: Some(Rating::Dissatisfied), reasons: vec![], comment: None };
        let e = refused(&o, R::Reporter, unexplained);
        assert_eq!((e.code(), e.field()), ("order.dissatisfied_reason_required", Some("reasons")));
        // A picked reason is enough without a comment.
        let mut picked = o.clone();
        let why = Action::Evaluate {
            rating: Some(Rating::Dissatisfied),
            reasons: vec![EvalReason::Unresolved, EvalReason::TooSlow],
            comment: None,
        };
        assert_eq!(step(&mut picked, R::Reporter, why).to, S::Handling);
        // No rating is refused, never read as 满意.
        let e =
            refused(&o, R::Reporter, Action::Evaluate { rating: None, reasons: vec![], comment: Some("很好".into()) });
        assert_eq!((e.code(), e.field()), ("order.rating_required", Some("rating")));
        let wrong =
            Action::Evaluate { rating: Some(Rating::Satisfied), reasons: vec![EvalReason::Attitude], comment: None };
        assert_eq!(refused(&o, R::Reporter, wrong).code(), "order.reasons_only_dissatisfied");
        // Comments are optional for the other ratings.
        let mut fair = o.clone();
        step(
            &mut fair,
            R::Acceptor,
            Action::Evaluate { rating: Some(Rating::FairlySatisfied), reasons: vec![], comment: None },
        );
        assert_eq!(fair.state, S::Closed);

        let t = step(&mut o, R::Reporter, evaluate(Rating::Dissatisfied));
        assert_eq!((t.to, t.clock), (S::Handling, ClockEffect::StartHandle));
        assert_eq!((o.reopen_count, o.lead_unit), (1, Some(10)));
        assert_eq!(o.assisting_units, vec![11]);
        step(&mut o, R::Handler, report());
        step(&mut o, R::Verifier, Action::VerifyPass { attachments: vec![] });
        let t = step(&mut o, R::Reporter, evaluate(Rating::Dissatisfied));
        assert_eq!(t.to, S::Supervision);
        assert_eq!((o.reopen_count, o.dissatisfied_count), (1, 2));

        let t = step(&mut o, R::Supervisor, Action::Supervise { note: "限期整改".into() });
        assert_eq!((t.from, t.to), (S::Supervision, S::Supervision));
        assert_eq!(o.supervise_count, 1);
        // Under supervision the supervisor may send it back to the same unit.
        let mut redo = o.clone();
        step(
            &mut redo,
            R::Supervisor,
            Action::Reassign { lead_unit: 10, assisting: vec![], reason: "督办重办".into() },
        );
        assert_eq!(redo.state, S::PendingSign);
        // Or conclude it in writing.
        let t = step(&mut o, R::Supervisor, Action::Conclude { reason: "诉求超出政策范围，已书面答复".into() });
        assert_eq!((t.to, t.clock), (S::Closed, ClockEffect::Stop));
    }

    #[test]
    fn unrated_orders_are_archived() {
        let mut o = pending_evaluation();
        assert!(!allowed_actions(&o, R::Handler).contains(&ActionKind::Archive));
        step(&mut o, R::System, Action::Archive);
        assert_eq!((o.state, o.rating), (S::Closed, None));
    }

    #[test]
    fn escalation_to_the_top() {
        let mut o = handling();
        let t = step(&mut o, R::Dispatcher, Action::Escalate { reason: why() });
        assert_eq!((t.to, t.clock), (S::PendingDispatch, ClockEffect::Stop));
        assert_eq!((o.level, o.lead_unit), (Level::Subdistrict, None));
        assert!(o.assisting_units.is_empty());
        // By rule: the timer reports the deadline passed, the system escalates.
        step(&mut o, R::Dispatcher, dispatch(30, &[]));
        step(&mut o, R::System, Action::MarkOverdue);
        step(&mut o, R::System, Action::Escalate { reason: "超期自动上报".into() });
        assert_eq!((o.level, o.overdue), (Level::District, false));
        assert!(!allowed_actions(&o, R::Supervisor).contains(&ActionKind::Escalate));
        let e = refused(&o, R::Supervisor, Action::Escalate { reason: why() });
        assert_eq!((e.code(), e.class()), ("order.already_top_level", ErrorClass::Conflict));
        assert_eq!(refused(&o, R::Handler, Action::Escalate { reason: why() }).code(), "order.role_not_allowed");
    }

    #[test]
    fn shelve_and_deliberation_resume_to_the_exact_state() {
        let mut at_dispatch = Order::new(Level::Community);
        step(&mut at_dispatch, R::Acceptor, Action::Accept);
        let mut at_sign = at_dispatch.clone();
        step(&mut at_sign, R::Dispatcher, dispatch(4, &[5]));
        let mut supervised = pending_evaluation();
        step(&mut supervised, R::Reporter, evaluate(Rating::Dissatisfied));
        step(&mut supervised, R::Handler, report());
        step(&mut supervised, R::Verifier, Action::VerifyPass { attachments: vec![] });
        step(&mut supervised, R::Reporter, evaluate(Rating::Dissatisfied));
        let mut overdue = handling();
        step(&mut overdue, R::System, Action::MarkOverdue);

        for before in [at_dispatch, at_sign, handling(), supervised, overdue] {
            let mut o = before.clone();
            assert_eq!(
                refused(&o, R::Supervisor, Action::Shelve { reason: "".into() }).code(),
                "order.reason_required"
            );
            let t = step(&mut o, R::Supervisor, Action::Shelve { reason: why() });
            assert_eq!((t.to, t.clock), (S::Shelved, ClockEffect::Pause));
            assert!(!allowed_actions(&o, R::Dispatcher).contains(&ActionKind::Shelve));
            assert!(!allowed_actions(&o, R::Handler).contains(&ActionKind::ReportBack));
            let t = step(&mut o, R::Dispatcher, Action::Resume);
            assert_eq!(t.clock, ClockEffect::Resume);
            assert_eq!(o, before, "挂账/恢复 returns to the exact prior order");

            let t = step(&mut o, R::Dispatcher, Action::SendToDeliberation { reason: "需居民议事".into() });
            assert_eq!((t.to, t.clock), (S::InDeliberation, ClockEffect::Pause));
            assert_eq!(
                refused(&o, R::System, Action::ResumeFromDeliberation { resolution: "\u{3000}".into() }).code(),
                "order.resolution_required"
            );
            step(&mut o, R::System, Action::ResumeFromDeliberation { resolution: "议定由物业维修".into() });
            assert_eq!(o, before, "议单 returns to the exact prior order");
        }
    }

    #[test]
    fn withdrawal_only_before_signing() {
        let w = || Action::Withdraw { reason: "问题已自行解决".into() };
        let mut o = Order::new(Level::Community);
        assert!(apply(&o, R::Reporter, &w()).is_ok());
        step(&mut o, R::Acceptor, Action::Accept);
        assert!(apply(&o, R::Reporter, &w()).is_ok());
        step(&mut o, R::Dispatcher, dispatch(1, &[]));
        assert_eq!(refused(&o, R::Dispatcher, w()).code(), "order.role_not_allowed");
        assert_eq!(refused(&o, R::Reporter, Action::Withdraw { reason: " ".into() }).code(), "order.reason_required");
        let t = apply(&o, R::Reporter, &w()).unwrap();
        assert_eq!((t.to, t.clock), (S::Withdrawn, ClockEffect::Stop));
        step(&mut o, R::Handler, Action::Sign);
        assert!(!allowed_actions(&o, R::Reporter).contains(&ActionKind::Withdraw));
        let e = refused(&o, R::Reporter, w());
        assert_eq!(e, MachineError::ActionNotAllowed { action: ActionKind::Withdraw, state: S::Handling });
        assert_eq!(e.code(), "order.action_not_allowed");
    }

    #[test]
    fn merge_into_a_master() {
        let o = Order::new(Level::Community);
        assert_eq!(refused(&o, R::Acceptor, Action::Merge { into: 0 }).code(), "order.invalid_id");
        let mut o = o;
        step(&mut o, R::Acceptor, Action::Merge { into: 42 });
        assert_eq!((o.state, o.merged_into), (S::Merged, Some(42)));
        let o = handling();
        assert_eq!(refused(&o, R::Dispatcher, Action::Merge { into: 42 }).code(), "order.action_not_allowed");
    }

    #[test]
    fn notices_keep_the_state() {
        let mut o = handling();
        let t = step(&mut o, R::System, Action::Urge { note: "请尽快办理".into() });
        assert_eq!((t.from, t.to, t.clock), (S::Handling, S::Handling, ClockEffect::None));
        step(&mut o, R::Supervisor, Action::Supervise { note: "挂牌督办".into() });
        assert_eq!((o.urge_count, o.supervise_count), (1, 1));
        assert_eq!(refused(&o, R::Supervisor, Action::Urge { note: "".into() }).code(), "order.note_required");
        let closed = {
            let mut c = pending_evaluation();
            step(&mut c, R::Reporter, evaluate(Rating::Satisfied));
            c
        };
        assert_eq!(
            refused(&closed, R::Supervisor, Action::Supervise { note: "x".into() }).code(),
            "order.action_not_allowed"
        );
    }

    #[test]
    fn clock_effects() {
        use ActionKind as K;
        use ClockEffect as C;
        let cases = [
            (S::PendingDispatch, S::PendingSign, K::Dispatch, C::StartSign),
            (S::PendingSign, S::Handling, K::Sign, C::StartHandle),
            (S::PendingVerify, S::Handling, K::VerifyFail, C::StartHandle),
            (S::PendingEvaluation, S::Handling, K::Evaluate, C::StartHandle),
            (S::Handling, S::PendingVerify, K::ReportBack, C::Stop),
            (S::Handling, S::Shelved, K::Shelve, C::Pause),
            (S::Shelved, S::PendingSign, K::Resume, C::Resume),
            (S::ReturnRequested, S::Handling, K::RejectReturn, C::Resume),
            (S::ReturnRequested, S::PendingSign, K::ApproveReturn, C::StartSign),
            (S::Handling, S::Handling, K::ApproveExtension, C::Extend),
            (S::Handling, S::Handling, K::Urge, C::None),
            (S::Handling, S::PendingDispatch, K::Escalate, C::Stop),
        ];
        for (from, to, action, effect) in cases {
            assert_eq!(clock_effect(from, to, action), effect, "{from:?}→{to:?} {action:?}");
        }
    }

    #[test]
    fn serde_shapes() {
        let a: Action = serde_json::from_str(r#"{"action":"dispatch","lead_unit":3,"assisting":[4]}"#).unwrap();
        assert_eq!(a, dispatch(3, &[4]));
        let json = serde_json::to_value(evaluate(Rating::FairlySatisfied)).unwrap();
        assert_eq!(json, serde_json::json!({"action":"evaluate","rating":"fairly_satisfied","comment":"说明"}));
        let a: Action = serde_json::from_str(r#"{"action":"sign"}"#).unwrap();
        assert_eq!(a, Action::Sign);
        let a: Action = serde_json::from_str(r#"{"action":"approve_return"}"#).unwrap();
        assert_eq!(a, Action::ApproveReturn { reassign_to: None });
        let o = pending_evaluation();
        let back: Order = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert_eq!(serde_json::to_value(S::PendingSign).unwrap(), serde_json::json!("pending_sign"));
    }

    #[test]
    fn names_and_keys_agree() {
        fn check<T: Serialize + Copy>(
            all: &[T],
            name: fn(T) -> &'static str,
            key: fn(T) -> &'static str,
            prefix: &str,
        ) {
            let mut keys = HashSet::new();
            for &v in all {
                let serde = serde_json::to_value(v).unwrap();
                assert_eq!(serde.as_str(), Some(name(v)));
                assert_eq!(key(v), format!("{prefix}{}", name(v)));
                assert!(keys.insert(key(v)));
            }
        }
        check(State::ALL, State::as_str, State::label_key, "order.state.");
        check(ActionKind::ALL, ActionKind::as_str, ActionKind::label_key, "order.action.");
        check(ActorRole::ALL, ActorRole::as_str, ActorRole::label_key, "order.role.");
        check(Level::ALL, Level::as_str, Level::label_key, "order.level.");
        check(Rating::ALL, Rating::as_str, Rating::label_key, "order.rating.");
        check(EvalReason::ALL, EvalReason::as_str, EvalReason::label_key, "order.eval_reason.");
        for a in sample_actions_all() {
            let serde = serde_json::to_value(&a).unwrap();
            assert_eq!(serde["action"].as_str(), Some(a.kind().as_str()));
            let back: Action = serde_json::from_value(serde).unwrap();
            assert_eq!(back, a);
        }
        let covered: HashSet<_> = sample_actions_all().iter().map(Action::kind).collect();
        assert_eq!(covered.len(), ActionKind::ALL.len(), "samples cover every kind");
    }

    #[test]
    fn error_codes_are_listed() {
        let errors = [
            MachineError::RoleNotAllowed { role: R::Reporter, action: ActionKind::Sign },
            MachineError::ActionNotAllowed { action: ActionKind::Sign, state: S::Closed },
            MachineError::Blank { field: TextField::Reason },
            MachineError::Blank { field: TextField::OverrideReason },
            MachineError::Blank { field: TextField::Note },
            MachineError::Blank { field: TextField::Result },
            MachineError::Blank { field: TextField::Comment },
            MachineError::Blank { field: TextField::Resolution },
            MachineError::AlreadyTopLevel,
            MachineError::ExtensionPending,
            MachineError::NoExtensionPending,
            MachineError::ExtensionAfterDeadline,
            MachineError::ExtensionDays { days: 0 },
            MachineError::AlreadyOverdue,
            MachineError::InvalidId { field: "into", id: 0 },
            MachineError::LeadAlsoAssisting { unit: 1 },
            MachineError::DuplicateAssisting { unit: 1 },
            MachineError::SameUnit { field: "lead_unit", unit: 1 },
            MachineError::RatingRequired,
            MachineError::DissatisfiedReasonRequired,
            MachineError::ReasonsOnlyDissatisfied,
        ];
        let codes: HashSet<_> = errors.iter().map(MachineError::code).collect();
        let listed: HashSet<_> = MachineError::CODES.iter().copied().collect();
        assert_eq!(codes, listed);
        assert_eq!(listed.len(), MachineError::CODES.len());
    }

    /// The who-may-do-what table, pinned: a policy change must show up here.
    #[test]
    fn policy_table() {
        let mut fixtures: Vec<(&str, Order)> = Vec::new();
        let mut o = Order::new(Level::Community);
        fixtures.push(("pending_accept", o.clone()));
        step(&mut o, R::Acceptor, Action::Accept);
        fixtures.push(("pending_dispatch", o.clone()));
        step(&mut o, R::Dispatcher, dispatch(1, &[]));
        fixtures.push(("pending_sign", o.clone()));
        let o = handling();
        fixtures.push(("handling", o.clone()));
        let mut ext = o.clone();
        step(&mut ext, R::Handler, Action::RequestExtension { days: 2, reason: why() });
        fixtures.push(("handling+extension", ext));
        let mut late = o.clone();
        step(&mut late, R::System, Action::MarkOverdue);
        fixtures.push(("handling+overdue", late));
        let mut ret = o.clone();
        step(&mut ret, R::Handler, Action::ReturnOrder { reason: why() });
        fixtures.push(("return_requested", ret));
        let mut shelved = o.clone();
        step(&mut shelved, R::Dispatcher, Action::Shelve { reason: why() });
        fixtures.push(("shelved", shelved));
        let mut delib = o.clone();
        step(&mut delib, R::Dispatcher, Action::SendToDeliberation { reason: why() });
        fixtures.push(("in_deliberation", delib));
        let mut verify = o.clone();
        step(&mut verify, R::Handler, report());
        fixtures.push(("pending_verify", verify));
        let mut eval = pending_evaluation();
        fixtures.push(("pending_evaluation", eval.clone()));
        step(&mut eval, R::Reporter, evaluate(Rating::Dissatisfied));
        step(&mut eval, R::Handler, report());
        step(&mut eval, R::Verifier, Action::VerifyPass { attachments: vec![] });
        step(&mut eval, R::Reporter, evaluate(Rating::Dissatisfied));
        fixtures.push(("supervision", eval.clone()));
        step(&mut eval, R::Supervisor, Action::Conclude { reason: why() });
        fixtures.push(("closed", eval));

        let mut table = String::new();
        for (name, order) in &fixtures {
            for &role in ActorRole::ALL {
                let kinds: Vec<&str> = allowed_actions(order, role).into_iter().map(ActionKind::as_str).collect();
                if !kinds.is_empty() {
                    table += &format!("{name} {}: {}\n", role.as_str(), kinds.join(" "));
                }
            }
        }
        let expected = "\
pending_accept reporter: withdraw
pending_accept acceptor: accept reject merge
pending_accept dispatcher: merge
pending_accept handler: handle_on_spot
pending_accept supervisor: supervise
pending_accept system: accept
pending_dispatch reporter: withdraw
pending_dispatch acceptor: merge
pending_dispatch dispatcher: merge dispatch shelve escalate send_to_deliberation urge
pending_dispatch supervisor: dispatch shelve escalate send_to_deliberation supervise urge
pending_dispatch system: escalate urge
pending_sign reporter: withdraw
pending_sign dispatcher: reassign shelve escalate send_to_deliberation urge
pending_sign handler: sign return_order request_extension
pending_sign supervisor: reassign shelve escalate send_to_deliberation supervise urge
pending_sign system: mark_overdue escalate urge
handling dispatcher: reassign shelve escalate send_to_deliberation urge
handling handler: handle report_back return_order request_extension
handling supervisor: reassign shelve escalate send_to_deliberation supervise urge
handling system: mark_overdue escalate urge
handling+extension dispatcher: reassign approve_extension refuse_extension shelve escalate send_to_deliberation urge
handling+extension handler: handle report_back return_order
handling+extension supervisor: reassign approve_extension refuse_extension shelve escalate send_to_deliberation supervise urge
handling+extension system: mark_overdue escalate urge
handling+overdue dispatcher: reassign shelve escalate send_to_deliberation urge
handling+overdue handler: handle report_back return_order
handling+overdue supervisor: reassign shelve escalate send_to_deliberation supervise urge
handling+overdue system: escalate urge
return_requested dispatcher: approve_return reject_return escalate urge
return_requested supervisor: approve_return reject_return escalate supervise urge
return_requested system: escalate urge
shelved dispatcher: resume
shelved supervisor: resume supervise
in_deliberation dispatcher: resume_from_deliberation
in_deliberation supervisor: resume_from_deliberation supervise
in_deliberation system: resume_from_deliberation
pending_verify dispatcher: urge
pending_verify verifier: verify_pass verify_fail
pending_verify supervisor: supervise urge
pending_verify system: urge
pending_evaluation reporter: evaluate
pending_evaluation acceptor: follow_up evaluate
pending_evaluation verifier: follow_up evaluate
pending_evaluation supervisor: archive supervise
pending_evaluation system: archive
supervision dispatcher: reassign shelve escalate send_to_deliberation
supervision supervisor: reassign shelve escalate send_to_deliberation supervise conclude
supervision system: escalate
closed acceptor: follow_up
closed verifier: follow_up
";
        assert_eq!(table, expected, "\n{table}");
    }

    #[test]
    fn handled_on_the_spot_closes_without_dispatch() {
        let mut o = Order::new(Level::Community);
        assert_eq!(allowed_actions(&o, R::Handler), vec![ActionKind::HandleOnSpot]);
        let blank = Action::HandleOnSpot { unit: 10, result: " ".into(), attachments: vec![] };
        assert_eq!(refused(&o, R::Handler, blank).code(), "order.result_required");
        let t =
            step(&mut o, R::Handler, Action::HandleOnSpot { unit: 10, result: "已清理".into(), attachments: vec![4] });
        assert_eq!((t.from, t.to, t.clock), (S::PendingAccept, S::Closed, ClockEffect::Stop));
        assert!(o.on_spot && o.state.is_closed());
        assert_eq!(o.lead_unit, Some(10));
        // Once accepted, the matter is the centre's to dispatch.
        let mut accepted = Order::new(Level::Community);
        step(&mut accepted, R::Acceptor, Action::Accept);
        let again = Action::HandleOnSpot { unit: 10, result: "已清理".into(), attachments: vec![] };
        assert_eq!(refused(&accepted, R::Handler, again).code(), "order.action_not_allowed");
    }

    #[test]
    fn follow_up_outcomes_keep_the_rating() {
        let mut o = pending_evaluation();
        step(&mut o, R::Reporter, evaluate(Rating::Satisfied));
        let heard = |outcome, note: &str| Action::FollowUp { note: note.into(), outcome: Some(outcome) };
        let t = step(&mut o, R::Acceptor, heard(FollowUpOutcome::NotReached, ""));
        assert_eq!((t.from, t.to), (S::Closed, S::Closed));
        let e = refused(&o, R::Acceptor, heard(FollowUpOutcome::Dissatisfied, " "));
        assert_eq!(e.code(), "order.note_required");
        step(&mut o, R::Verifier, heard(FollowUpOutcome::Dissatisfied, "路灯仍不亮"));
        assert_eq!(o.rating, Some(Rating::Satisfied), "a call never replaces the resident's rating");
        assert_eq!(o.state, S::Closed, "a closed order stays closed");
        assert_eq!(heard(FollowUpOutcome::Reached, "  ").text(), None);
    }

    #[test]
    fn a_dissatisfied_call_before_the_rating_reopens_once() {
        let heard = |outcome, note: &str| Action::FollowUp { note: note.into(), outcome: Some(outcome) };
        let mut o = pending_evaluation();
        let t = step(&mut o, R::Acceptor, heard(FollowUpOutcome::Dissatisfied, "路灯仍不亮"));
        assert_eq!((t.from, t.to, t.clock), (S::PendingEvaluation, S::Handling, ClockEffect::StartHandle));
        assert_eq!((o.reopen_count, o.rating), (1, None), "reopened, and the resident has not rated");
        step(&mut o, R::Handler, report());
        step(&mut o, R::Verifier, Action::VerifyPass { attachments: vec![] });
        // A second dissatisfied call is recorded only; the resident's own 不满意 goes to 督办.
        let t = step(&mut o, R::Acceptor, heard(FollowUpOutcome::Dissatisfied, "还是不亮"));
        assert_eq!(t.to, S::PendingEvaluation);
        step(
            &mut o,
            R::Reporter,
            Action::Evaluate {
                rating: Some(Rating::Dissatisfied),
                reasons: vec![EvalReason::Unresolved],
                comment: None,
            },
        );
        assert_eq!(o.state, S::Supervision);
    }

    #[test]
    fn replay_reports_the_bad_event() {
        let events = vec![(R::Acceptor, Action::Accept), (R::Handler, Action::Sign)];
        let e = replay(Level::Community, events).unwrap_err();
        assert_eq!((e.index, e.code()), (1, "order.action_not_allowed"));
    }

    /// One valid-looking example of every action kind (for serde checks).
    fn sample_actions_all() -> Vec<Action> {
        let o = Order::new(Level::Community);
        ActionKind::ALL.iter().flat_map(|&k| samples(k, &o)).collect()
    }

    /// Valid payloads for `kind` given `order` (which unit is "another" one
    /// depends on the order).
    fn samples(kind: ActionKind, order: &Order) -> Vec<Action> {
        use ActionKind as K;
        let other = |unit: Option<i64>| if unit == Some(5) { 6 } else { 5 };
        match kind {
            K::Accept => vec![Action::Accept],
            K::Reject => vec![Action::Reject { reason: why() }],
            K::Merge => vec![Action::Merge { into: 99 }],
            K::Withdraw => vec![Action::Withdraw { reason: why() }],
            K::Dispatch => vec![
                dispatch(1, &[2, 3]),
                Action::Dispatch { lead_unit: 4, assisting: vec![], override_reason: Some(why()) },
            ],
            K::Sign => vec![Action::Sign],
            K::Handle => vec![Action::Handle { note: why(), attachments: vec![] }],
            K::ReportBack => vec![report()],
            K::VerifyPass => vec![Action::VerifyPass { attachments: vec![1] }],
            K::VerifyFail => vec![Action::VerifyFail { reason: why(), attachments: vec![] }],
            K::FollowUp => vec![
                Action::FollowUp { note: why(), outcome: None },
                Action::FollowUp { note: String::new(), outcome: Some(FollowUpOutcome::NotReached) },
            ],
            K::HandleOnSpot => vec![Action::HandleOnSpot { unit: 5, result: why(), attachments: vec![3] }],
            K::Evaluate => Rating::ALL.iter().map(|&r| evaluate(r)).collect(),
            K::Archive => vec![Action::Archive],
            K::ReturnOrder => vec![Action::ReturnOrder { reason: why() }],
            K::ApproveReturn => vec![
                Action::ApproveReturn { reassign_to: None },
                Action::ApproveReturn { reassign_to: Some(other(order.returned_by)) },
            ],
            K::RejectReturn => vec![Action::RejectReturn { reason: why() }],
            K::Reassign => {
                vec![Action::Reassign { lead_unit: other(order.lead_unit), assisting: vec![], reason: why() }]
            }
            K::RequestExtension => vec![Action::RequestExtension { days: 3, reason: why() }],
            K::ApproveExtension => vec![Action::ApproveExtension],
            K::RefuseExtension => vec![Action::RefuseExtension { reason: why() }],
            K::MarkOverdue => vec![Action::MarkOverdue],
            K::Shelve => vec![Action::Shelve { reason: why() }],
            K::Resume => vec![Action::Resume],
            K::Escalate => vec![Action::Escalate { reason: why() }],
            K::SendToDeliberation => vec![Action::SendToDeliberation { reason: why() }],
            K::ResumeFromDeliberation => vec![Action::ResumeFromDeliberation { resolution: why() }],
            K::Supervise => vec![Action::Supervise { note: why() }],
            K::Urge => vec![Action::Urge { note: why() }],
            K::Conclude => vec![Action::Conclude { reason: why() }],
        }
    }

    /// Bounded exhaustive exploration: in every reachable order, for every
    /// role and kind, valid payloads succeed exactly when the kind is in
    /// `allowed_actions`; every reached order keeps the invariants.
    #[test]
    fn allowed_actions_match_apply_exhaustively() {
        let mut seen: HashSet<Order> = HashSet::new();
        let mut frontier: Vec<Order> = Level::ALL.iter().map(|&l| Order::new(l)).collect();
        let mut states = HashSet::new();
        for _depth in 0..14 {
            let mut next = Vec::new();
            for order in frontier {
                if !seen.insert(order.clone()) {
                    continue;
                }
                order.check_invariants().unwrap();
                states.insert(order.state);
                for &role in ActorRole::ALL {
                    let allowed = allowed_actions(&order, role);
                    for &kind in ActionKind::ALL {
                        for action in samples(kind, &order) {
                            match apply(&order, role, &action) {
                                Ok(t) => {
                                    assert!(
                                        allowed.contains(&kind),
                                        "{kind:?} by {role:?} applied but not allowed in {order:?}"
                                    );
                                    assert_eq!(t.from, order.state);
                                    assert_eq!(t.to, t.new_order.state);
                                    // Notices only bump counters, which grow
                                    // without bound; no need to explore them.
                                    if !matches!(
                                        kind,
                                        ActionKind::Handle
                                            | ActionKind::FollowUp
                                            | ActionKind::Supervise
                                            | ActionKind::Urge
                                    ) {
                                        next.push(t.new_order);
                                    }
                                }
                                Err(e) => assert!(
                                    !allowed.contains(&kind),
                                    "{kind:?} by {role:?} allowed but refused ({e}) in {order:?}"
                                ),
                            }
                        }
                    }
                }
            }
            frontier = next;
        }
        assert_eq!(states.len(), State::ALL.len(), "every state is reached");
        assert!(seen.len() > 1000, "explored {} orders", seen.len());
    }

    /// Turns random numbers into an action of `kind`, often invalid.
    fn build(kind: ActionKind, p: &Payload) -> Action {
        use ActionKind as K;
        let text = ["", "  ", "\u{3000}\t", "理由", " 前后空格 "][p.text % 5].to_string();
        // Half the ratings are 不满意, to reach 重办 and 督办 often.
        let rating =
            [Rating::Satisfied, Rating::FairlySatisfied, Rating::Dissatisfied, Rating::Dissatisfied][p.rating % 4];
        match kind {
            K::Accept => Action::Accept,
            K::Reject => Action::Reject { reason: text },
            K::Merge => Action::Merge { into: p.unit },
            K::Withdraw => Action::Withdraw { reason: text },
            K::Dispatch => Action::Dispatch {
                lead_unit: p.unit,
                assisting: p.units.clone(),
                override_reason: p.flag.then_some(text),
            },
            K::Sign => Action::Sign,
            K::Handle => Action::Handle { note: text, attachments: p.units.clone() },
            K::ReportBack => Action::ReportBack { result: text, attachments: p.units.clone() },
            K::VerifyPass => Action::VerifyPass { attachments: p.units.clone() },
            K::VerifyFail => Action::VerifyFail { reason: text, attachments: p.units.clone() },
            K::FollowUp => Action::FollowUp {
                note: text,
                outcome: p.flag.then(|| FollowUpOutcome::ALL[p.rating % FollowUpOutcome::ALL.len()]),
            },
            K::HandleOnSpot => Action::HandleOnSpot { unit: p.unit, result: text, attachments: p.units.clone() },
            K::Evaluate => Action::Evaluate { rating: Some(rating), reasons: vec![], comment: p.flag.then_some(text) },
            K::Archive => Action::Archive,
            K::ReturnOrder => Action::ReturnOrder { reason: text },
            K::ApproveReturn => Action::ApproveReturn { reassign_to: p.flag.then_some(p.unit) },
            K::RejectReturn => Action::RejectReturn { reason: text },
            K::Reassign => Action::Reassign { lead_unit: p.unit, assisting: p.units.clone(), reason: text },
            K::RequestExtension => Action::RequestExtension { days: p.days, reason: text },
            K::ApproveExtension => Action::ApproveExtension,
            K::RefuseExtension => Action::RefuseExtension { reason: text },
            K::MarkOverdue => Action::MarkOverdue,
            K::Shelve => Action::Shelve { reason: text },
            K::Resume => Action::Resume,
            K::Escalate => Action::Escalate { reason: text },
            K::SendToDeliberation => Action::SendToDeliberation { reason: text },
            K::ResumeFromDeliberation => Action::ResumeFromDeliberation { resolution: text },
            K::Supervise => Action::Supervise { note: text },
            K::Urge => Action::Urge { note: text },
            K::Conclude => Action::Conclude { reason: text },
        }
    }

    #[derive(Debug, Clone)]
    struct Payload {
        text: usize,
        unit: i64,
        units: Vec<i64>,
        days: u32,
        rating: usize,
        flag: bool,
    }

    /// One step of a random run: mostly a (role, kind) drawn from what is
    /// allowed now, so runs get deep; sometimes anything at all.
    #[derive(Debug, Clone)]
    struct Step {
        guided: bool,
        pick: usize,
        role: usize,
        kind: usize,
        payload: Payload,
    }

    fn payload() -> impl Strategy<Value = Payload> {
        (
            0usize..5,
            -1i64..8,
            prop::collection::vec(-1i64..8, 0..3),
            prop_oneof![0u32..6, Just(MAX_EXTENSION_DAYS + 1)],
            0usize..4,
            any::<bool>(),
        )
            .prop_map(|(text, unit, units, days, rating, flag)| Payload {
                text,
                unit,
                units,
                days,
                rating,
                flag,
            })
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step =
            (prop::bool::weighted(0.85), any::<usize>(), 0..ActorRole::ALL.len(), 0..ActionKind::ALL.len(), payload())
                .prop_map(|(guided, pick, role, kind, payload)| Step { guided, pick, role, kind, payload });
        prop::collection::vec(step, 0..80)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn random_runs_keep_invariants_and_replay(
            level in prop::sample::select(Level::ALL),
            run in steps(),
        ) {
            let mut order = Order::new(level);
            let mut log = Vec::new();
            for s in run {
                let (role, kind) = if s.guided {
                    // Endings are drawn rarely so that most runs get deep.
                    let ending = |k: &ActionKind| {
                        use ActionKind as K;
                        matches!(k, K::Reject | K::Merge | K::Withdraw | K::Archive | K::Conclude | K::HandleOnSpot)
                    };
                    let rare = s.pick % 16 == 0;
                    let options: Vec<(ActorRole, ActionKind)> = ActorRole::ALL
                        .iter()
                        .flat_map(|&r| allowed_actions(&order, r).into_iter().map(move |k| (r, k)))
                        .filter(|(_, k)| rare || !ending(k))
                        .collect();
                    if options.is_empty() {
                        break;
                    }
                    options[s.pick % options.len()]
                } else {
                    (ActorRole::ALL[s.role], ActionKind::ALL[s.kind])
                };
                let action = build(kind, &s.payload);
                let allowed = allowed_actions(&order, role).contains(&kind);
                match apply(&order, role, &action) {
                    Ok(t) => {
                        prop_assert!(allowed, "{:?} by {:?} applied but not allowed", kind, role);
                        prop_assert_eq!(t.from, order.state);
                        prop_assert_eq!(t.to, t.new_order.state);
                        prop_assert_eq!(t.clock, clock_effect(t.from, t.to, kind));
                        if let Err(rule) = t.new_order.check_invariants() {
                            return Err(TestCaseError::fail(format!(
                                "{rule}: {action:?} by {role:?} from {order:?} gave {:?}",
                                t.new_order
                            )));
                        }
                        order = t.new_order;
                        log.push((role, action));
                    }
                    Err(e) => {
                        if allowed {
                            // Allowed now: only the payload can be at fault.
                            prop_assert_eq!(e.class(), ErrorClass::Invalid, "{}", e);
                        } else {
                            prop_assert_ne!(e.class(), ErrorClass::Invalid, "{}", e);
                        }
                        prop_assert!(MachineError::CODES.contains(&e.code()));
                    }
                }
            }
            prop_assert_eq!(replay(level, log.clone()).unwrap(), order.clone());
            // The log survives storage as JSON.
            let json = serde_json::to_string(&log).unwrap();
            let back: Vec<(ActorRole, Action)> = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(replay(level, back).unwrap(), order);
        }
    }
}
