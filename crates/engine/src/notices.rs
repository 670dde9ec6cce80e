//! Which desktop notifications the sessions deserve (UX.md §Behaviour): a new proposal to
//! review, one about to expire, a blame, a failover that makes this member the one to
//! broadcast, a confirmed payment. Pure: the shell feeds it session views and the time, and
//! shows what it returns; each event is told once per session.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::views::SessionView;
use chain::amount::format_xpi;

/// One notification to show; clicking it opens `session_id` (the app's window, when `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub session_id: Option<String>,
    pub event: Event,
    pub title: String,
    pub body: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    // In order of urgency: what is told first when there is room for few.
    /// Earlier broadcasters failed: this member now broadcasts the signed transaction.
    NowCoordinator,
    /// A proposal signed with this member's key that this app did not make: the key may be
    /// in someone else's hands.
    ProposedWithMyKey,
    /// The session ended with a verified blame.
    Blame,
    /// Less than a fifth of the time this app has seen the proposal for is left, and it
    /// still waits for this member.
    AboutToExpire,
    /// A co-signer's proposal waits for this member's review.
    NewProposal,
    Confirmed,
    /// Too many to tell one by one.
    Several,
}

/// At most this many notices are shown within [`WINDOW_MS`]; the rest are told as one "more"
/// notice once there is room (a member flooding proposals does not flood the screen, and
/// cannot push a blame or a failover out of it: those are told first).
pub const MOST_AT_ONCE: usize = 3;
pub const WINDOW_MS: u64 = 5 * 60 * 1000;

/// What has been told so far.
#[derive(Debug, Default)]
pub struct Notices {
    told: HashSet<(String, Event)>,
    /// When this app first saw each session: "about to expire" counts from here, not from
    /// the time the proposer wrote in it (a backdated proposal would arrive "expiring").
    first_seen: HashMap<String, u64>,
    /// When the notices of the last [`WINDOW_MS`] were shown.
    shown: VecDeque<u64>,
    /// Events not shown for want of room, told as one later.
    held: usize,
    started: bool,
}

impl Notices {
    pub fn new() -> Self {
        Self::default()
    }

    /// The notices `sessions` deserve now that were not told before. The first call only
    /// learns what is already there: a restart does not repeat old news (the Inbox and the
    /// tray count show what waits).
    pub fn update(&mut self, sessions: &[SessionView], now_ms: u64) -> Vec<Notice> {
        let mut fresh = Vec::new();
        for session in sessions {
            let seen = *self
                .first_seen
                .entry(session.session_id.clone())
                .or_insert(now_ms);
            for event in events(session, seen, now_ms) {
                if self.told.insert((session.session_id.clone(), event)) && self.started {
                    fresh.push(notice(session, event));
                }
            }
        }
        self.started = true;
        fresh.sort_by_key(|n| n.event);
        self.within_room(fresh, now_ms)
    }

    fn within_room(&mut self, mut fresh: Vec<Notice>, now_ms: u64) -> Vec<Notice> {
        while self
            .shown
            .front()
            .is_some_and(|&at| now_ms.saturating_sub(at) >= WINDOW_MS)
        {
            self.shown.pop_front();
        }
        let room = MOST_AT_ONCE.saturating_sub(self.shown.len());
        if fresh.len() + usize::from(self.held > 0) > room {
            let keep = room.saturating_sub(1).min(fresh.len());
            self.held += fresh.len() - keep;
            fresh.truncate(keep);
        }
        if self.held > 0 && fresh.len() < room {
            fresh.push(several(self.held));
            self.held = 0;
        }
        self.shown.extend(fresh.iter().map(|_| now_ms));
        fresh
    }
}

fn several(count: usize) -> Notice {
    Notice {
        session_id: None,
        event: Event::Several,
        title: format!("{count} more things to look at"),
        body: "Open Lotus Cosigner: the Inbox lists what waits for you.".to_owned(),
    }
}

fn events(session: &SessionView, first_seen_ms: u64, now_ms: u64) -> Vec<Event> {
    let mut events = Vec::new();
    let me = my_number(session);
    if session.needs_me() {
        if session.made_here {
            // Mine: nothing new to tell.
        } else if me == Some(session.proposer) {
            events.push(Event::ProposedWithMyKey);
        } else {
            events.push(Event::NewProposal);
        }
        let lifetime = session
            .expires_ms
            .saturating_sub(session.created_ms.max(first_seen_ms));
        let left = session.expires_ms.saturating_sub(now_ms);
        if left > 0 && left <= lifetime / 5 {
            events.push(Event::AboutToExpire);
        }
    }
    if session.blamed_member.is_some() {
        events.push(Event::Blame);
    }
    if session.outcome.as_deref() == Some("confirmed") {
        events.push(Event::Confirmed);
    } else if session.outcome.is_none() && me.is_some() && broadcaster_after_failover(session) == me
    {
        events.push(Event::NowCoordinator);
    }
    events
}

fn my_number(session: &SessionView) -> Option<u32> {
    session.members.iter().find(|m| m.is_me).map(|m| m.number)
}

/// The member who broadcasts now, if that is not the first one elected.
fn broadcaster_after_failover(session: &SessionView) -> Option<u32> {
    let current = session.failover.iter().position(|slot| !slot.failed)?;
    (current > 0).then(|| session.failover[current].member)
}

/// The amount comes first and the group's name (chosen by a member) last and quoted, so a
/// name cannot pass for the amount.
fn notice(session: &SessionView, event: Event) -> Notice {
    let group = format!("\u{201c}{}\u{201d}", session.group_name);
    let amount = format_xpi(session.sent_sats);
    let (title, body) = match event {
        Event::NewProposal => (
            format!("A payment of {amount} waits for your review"),
            format!("Proposed by member {} of {group}.", session.proposer),
        ),
        Event::ProposedWithMyKey => (
            format!("A payment of {amount} was signed with YOUR key elsewhere"),
            format!("This app did not make it: your key may be in someone else's hands. Reject it and tell your co-signers ({group})."),
        ),
        Event::AboutToExpire => (
            format!("A payment of {amount} is about to expire"),
            format!("It still waits for your review ({group})."),
        ),
        Event::Blame => (
            format!(
                "Member {} was blamed",
                session.blamed_member.unwrap_or_default()
            ),
            format!(
                "The {amount} payment stopped: {} ({group})",
                session.abort_reason.as_deref().unwrap_or("see the evidence")
            ),
        ),
        Event::NowCoordinator => (
            "You are now the coordinator".to_owned(),
            format!("Earlier broadcasters did not publish the {amount} payment; it is this app's turn ({group})."),
        ),
        Event::Confirmed => (
            format!("Payment of {amount} confirmed"),
            format!("It is in a block ({group})."),
        ),
        Event::Several => unreachable!("only made by several()"),
    };
    Notice {
        session_id: Some(session.session_id.clone()),
        event,
        title,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{sample_session, FailoverSlotView, SessionMemberView};

    fn session(id: &str) -> SessionView {
        let mut s = sample_session(12_500_000, 2_000);
        s.session_id = id.to_owned();
        s.group_name = "Shop till".into();
        s.proposer = 2;
        s.created_ms = 0;
        s.expires_ms = 100_000;
        s.members = (1..=3)
            .map(|number| SessionMemberView {
                number,
                public_key: String::new(),
                is_me: number == 1,
                approved: false,
                waiting_for: vec![],
                last_heard_ms: None,
            })
            .collect();
        s
    }

    fn slot(member: u32, failed: bool) -> FailoverSlotView {
        FailoverSlotView {
            member,
            starts_ms: 0,
            fails_ms: 0,
            failed,
        }
    }

    fn told(notices: &[Notice]) -> Vec<(String, Event)> {
        notices
            .iter()
            .map(|n| (n.session_id.clone().unwrap_or_default(), n.event))
            .collect()
    }

    #[test]
    fn what_is_there_at_start_is_not_told_and_each_event_is_told_once() {
        let mut notices = Notices::new();
        assert!(notices.update(&[session("a")], 0).is_empty());
        let new = notices.update(&[session("a"), session("b")], 0);
        assert_eq!(told(&new), [("b".into(), Event::NewProposal)]);
        assert_eq!(
            new[0].title,
            "A payment of 12.500000 XPI waits for your review"
        );
        assert_eq!(
            new[0].body,
            "Proposed by member 2 of \u{201c}Shop till\u{201d}."
        );
        assert!(notices
            .update(&[session("a"), session("b")], 1_000)
            .is_empty());
        // Less than a fifth of the time left: both are about to expire, once.
        let late = notices.update(&[session("a"), session("b")], 80_000);
        assert_eq!(
            told(&late),
            [
                ("a".into(), Event::AboutToExpire),
                ("b".into(), Event::AboutToExpire)
            ]
        );
        assert!(notices.update(&[session("a")], 90_000).is_empty());
    }

    #[test]
    fn a_backdated_proposal_does_not_arrive_about_to_expire() {
        let mut notices = Notices::new();
        notices.update(&[], 0);
        // Written as made long ago: 85 % of its time gone when it arrives.
        let arrived = notices.update(&[session("old")], 85_000);
        assert_eq!(told(&arrived), [("old".into(), Event::NewProposal)]);
        // The fifth counts from arrival: 15 s seen, so the last 3 s.
        assert!(notices.update(&[session("old")], 96_000).is_empty());
        let late = notices.update(&[session("old")], 97_500);
        assert_eq!(told(&late), [("old".into(), Event::AboutToExpire)]);
    }

    #[test]
    fn each_event_is_told_when_its_session_reaches_it() {
        type Case = (&'static str, fn(&mut SessionView), Vec<Event>);
        let cases: Vec<Case> = vec![
            ("a co-signer's proposal", |_| {}, vec![Event::NewProposal]),
            ("my own proposal", |s| s.made_here = true, vec![]),
            (
                "signed with my key, not made here",
                |s| s.proposer = 1,
                vec![Event::ProposedWithMyKey],
            ),
            ("a proposal I approved", |s| s.approved_by_me = true, vec![]),
            (
                "expired",
                |s| s.expires_ms = 1_000,
                vec![Event::NewProposal],
            ),
            (
                "blamed",
                |s| {
                    s.approved_by_me = true;
                    s.outcome = Some("aborted".into());
                    s.blamed_member = Some(3);
                    s.abort_reason = Some("member 3 sent a partial signature that does not verify (blamed, with proof)".into());
                },
                vec![Event::Blame],
            ),
            (
                "confirmed",
                |s| {
                    s.approved_by_me = true;
                    s.phase = "signed".into();
                    s.outcome = Some("confirmed".into());
                    s.failover = vec![slot(2, true), slot(1, false)];
                },
                vec![Event::Confirmed],
            ),
            (
                "the coordinator failed and I am next",
                |s| {
                    s.approved_by_me = true;
                    s.phase = "signed".into();
                    s.failover = vec![slot(2, true), slot(1, false), slot(3, false)];
                },
                vec![Event::NowCoordinator],
            ),
            (
                "the coordinator failed and another backup is next",
                |s| {
                    s.approved_by_me = true;
                    s.phase = "signed".into();
                    s.failover = vec![slot(2, true), slot(3, false), slot(1, false)];
                },
                vec![],
            ),
            (
                "I was elected first: no failover to tell",
                |s| {
                    s.approved_by_me = true;
                    s.phase = "signed".into();
                    s.failover = vec![slot(1, false), slot(2, false)];
                },
                vec![],
            ),
            (
                "no member is me: no failover is mine",
                |s| {
                    s.approved_by_me = true;
                    s.phase = "signed".into();
                    s.members.iter_mut().for_each(|m| m.is_me = false);
                    s.failover = vec![slot(2, true), slot(3, false)];
                },
                vec![],
            ),
        ];
        for (case, change, expected) in cases {
            let mut notices = Notices::new();
            notices.update(&[], 1_000);
            let mut s = session("s");
            change(&mut s);
            let events: Vec<Event> = notices
                .update(&[s], 1_000)
                .into_iter()
                .map(|n| n.event)
                .collect();
            assert_eq!(events, expected, "{case}");
        }
    }

    #[test]
    fn a_blame_notice_names_the_member_and_the_reason() {
        let mut notices = Notices::new();
        notices.update(&[], 0);
        let mut s = session("s");
        s.outcome = Some("aborted".into());
        s.blamed_member = Some(3);
        s.abort_reason = Some("member 3 sent two different messages".into());
        let told = notices.update(&[s], 0);
        assert_eq!(told[0].title, "Member 3 was blamed");
        assert_eq!(
            told[0].body,
            "The 12.500000 XPI payment stopped: member 3 sent two different messages (\u{201c}Shop till\u{201d})"
        );
    }

    #[test]
    fn a_flood_of_proposals_is_told_as_a_few_notices_and_urgent_ones_first() {
        let mut notices = Notices::new();
        notices.update(&[], 0);
        // Long-lived proposals: none comes near its end within this test.
        let long_lived = |id: String| SessionView {
            expires_ms: 10 * WINDOW_MS,
            ..session(&id)
        };
        let mut flood: Vec<SessionView> = (0..50).map(|i| long_lived(format!("s{i}"))).collect();
        flood[49].blamed_member = Some(2);
        flood[49].outcome = Some("aborted".into());
        let told = notices.update(&flood, 0);
        assert_eq!(
            told.iter().map(|n| n.event).collect::<Vec<_>>(),
            [Event::Blame, Event::NewProposal, Event::Several]
        );
        assert_eq!(told[2].session_id, None);
        assert_eq!(told[2].title, "48 more things to look at");
        assert!(notices.update(&flood, 0).is_empty(), "each told once");
        // One more every 12 seconds: nothing more within the window, then one "more".
        let mut shown = 0;
        for i in 0..25u64 {
            let mut more = flood.clone();
            more.push(long_lived(format!("late{i}")));
            shown += notices.update(&more, i * 12_000).len();
        }
        assert_eq!(shown, 0, "the window's three notices were used");
        let after = notices.update(&flood, WINDOW_MS);
        assert_eq!(told_titles(&after), ["25 more things to look at"]);
    }

    fn told_titles(notices: &[Notice]) -> Vec<String> {
        notices.iter().map(|n| n.title.clone()).collect()
    }
}
