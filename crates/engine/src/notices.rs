//! Which desktop notifications the sessions deserve (UX.md §Behaviour): a new proposal to
//! review, one about to expire, a blame, a failover that makes this member the one to
//! broadcast, a confirmed payment. Pure: the shell feeds it session views and the time, and
//! shows what it returns; each event is told once per session.

use std::collections::HashSet;

use crate::payment_form::SATS_PER_XPI;
use crate::views::SessionView;

/// One notification to show; clicking it opens `session_id` (the app's window, when `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub session_id: Option<String>,
    pub event: Event,
    pub title: String,
    pub body: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A co-signer's proposal waits for this member's review.
    NewProposal,
    /// Less than a fifth of the proposal's time is left and it still waits for this member.
    AboutToExpire,
    /// The session ended with a verified blame.
    Blame,
    /// Earlier broadcasters failed: this member now broadcasts the signed transaction.
    NowCoordinator,
    Confirmed,
    /// Too many at once to tell one by one.
    Several,
}

/// More notices than this at once (a flood of proposals from a hostile member, many sessions
/// ending together) are told as one, not as a wall of pop-ups.
pub const MOST_AT_ONCE: usize = 3;

/// What has been told so far.
#[derive(Debug, Default)]
pub struct Notices {
    told: HashSet<(String, Event)>,
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
        let mut notices = Vec::new();
        for session in sessions {
            for event in events(session, now_ms) {
                if self.told.insert((session.session_id.clone(), event)) && self.started {
                    notices.push(notice(session, event));
                }
            }
        }
        self.started = true;
        at_most_a_few(notices)
    }
}

fn at_most_a_few(mut notices: Vec<Notice>) -> Vec<Notice> {
    if notices.len() <= MOST_AT_ONCE {
        return notices;
    }
    let more = notices.len() - (MOST_AT_ONCE - 1);
    notices.truncate(MOST_AT_ONCE - 1);
    notices.push(Notice {
        session_id: None,
        event: Event::Several,
        title: format!("{more} more payments need a look"),
        body: "Open Lotus Cosigner: the Inbox lists what waits for you.".to_owned(),
    });
    notices
}

fn events(session: &SessionView, now_ms: u64) -> Vec<Event> {
    let mut events = Vec::new();
    if session.needs_me() {
        if !session.made_here {
            events.push(Event::NewProposal);
        }
        let lifetime = session.expires_ms.saturating_sub(session.created_ms);
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
    } else if session.outcome.is_none() && broadcaster_after_failover(session) == my_number(session)
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

fn notice(session: &SessionView, event: Event) -> Notice {
    let group = &session.group_name;
    let amount = xpi(session.sent_sats);
    let (title, body) = match event {
        Event::NewProposal => (
            "A payment waits for your review".to_owned(),
            format!(
                "Member {} of {group} proposes to send {amount}.",
                session.proposer
            ),
        ),
        Event::AboutToExpire => (
            "A payment is about to expire".to_owned(),
            format!("{amount} from {group} still waits for your review."),
        ),
        Event::Blame => (
            format!(
                "Member {} was blamed",
                session.blamed_member.unwrap_or_default()
            ),
            format!(
                "The {amount} payment from {group} stopped: {}",
                session.abort_reason.as_deref().unwrap_or("see the evidence")
            ),
        ),
        Event::NowCoordinator => (
            "You are now the coordinator".to_owned(),
            format!("Earlier broadcasters did not publish the {amount} payment from {group}; this app broadcasts it now."),
        ),
        Event::Confirmed => (
            "Payment confirmed".to_owned(),
            format!("{amount} from {group} is in a block."),
        ),
        Event::Several => unreachable!("only made by at_most_a_few"),
    };
    Notice {
        session_id: Some(session.session_id.clone()),
        event,
        title,
        body,
    }
}

fn xpi(sats: i64) -> String {
    format!(
        "{}.{:06} XPI",
        sats / SATS_PER_XPI,
        (sats % SATS_PER_XPI).unsigned_abs()
    )
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
        assert!(notices.update(&[session("a")], 1_000).is_empty());
        let new = notices.update(&[session("a"), session("b")], 1_000);
        assert_eq!(told(&new), [("b".into(), Event::NewProposal)]);
        assert_eq!(new[0].title, "A payment waits for your review");
        assert_eq!(
            new[0].body,
            "Member 2 of Shop till proposes to send 12.500000 XPI."
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
    fn each_event_is_told_when_its_session_reaches_it() {
        type Case = (&'static str, fn(&mut SessionView), Vec<Event>);
        let cases: Vec<Case> = vec![
            ("a co-signer's proposal", |_| {}, vec![Event::NewProposal]),
            ("my own proposal", |s| s.made_here = true, vec![]),
            ("a proposal I approved", |s| s.approved_by_me = true, vec![]),
            (
                "my own proposal near its end",
                |s| {
                    s.made_here = true;
                    s.created_ms = 0;
                    s.expires_ms = 1_100;
                },
                vec![Event::AboutToExpire],
            ),
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
            "The 12.500000 XPI payment from Shop till stopped: member 3 sent two different messages"
        );
    }

    #[test]
    fn a_flood_of_proposals_is_told_as_a_few_notices() {
        let mut notices = Notices::new();
        notices.update(&[], 0);
        let flood: Vec<SessionView> = (0..50).map(|i| session(&format!("s{i}"))).collect();
        let told = notices.update(&flood, 0);
        assert_eq!(told.len(), MOST_AT_ONCE);
        assert_eq!(told[MOST_AT_ONCE - 1].event, Event::Several);
        assert_eq!(told[MOST_AT_ONCE - 1].session_id, None);
        assert_eq!(told[MOST_AT_ONCE - 1].title, "48 more payments need a look");
        assert!(
            notices.update(&flood, 0).is_empty(),
            "each told once, also the folded ones"
        );
        let few: Vec<SessionView> = (50..53).map(|i| session(&format!("s{i}"))).collect();
        assert_eq!(
            told_events(&notices.update(&few, 0)),
            [Event::NewProposal; MOST_AT_ONCE]
        );
    }

    fn told_events(notices: &[Notice]) -> Vec<Event> {
        notices.iter().map(|n| n.event).collect()
    }
}
