//! Who a session is: the method it authenticated with, its user name, its clientmethod;
//! and how rules judge that (`socksmethod:`, `clientmethod:`, `user:`, `group:`), as Dante's
//! `accesscheck.c` does.

use std::fmt;

use hasocks_conf::sockd::Method;

use super::auth::{shown, Db, Outcome};
use super::Session;
use crate::rules::CompiledRule;

/// A session's authentication, once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authed {
    /// The socks method the session was authenticated by.
    pub method: Method,
    /// The user name, when the method gave one.
    pub user: Option<Vec<u8>>,
    /// The clientmethod of the client rule that admitted it.
    pub clientmethod: Method,
}

/// What negotiation found out.
#[derive(Clone)]
pub(crate) enum Identity {
    /// Authenticated (or method `none`).
    Known(Authed),
    /// Credentials answered `01 00` without a check, because several password databases
    /// are configured (Dante): the socks rules' methods check them.
    Unchecked {
        /// The name sent.
        user: Vec<u8>,
        /// The password sent.
        password: Vec<u8>,
        /// The clientmethod of the client rule.
        clientmethod: Method,
        /// Checks already run, by database, so that no rule repeats one.
        tried: Vec<(String, Outcome)>,
    },
}

impl Identity {
    /// The authentication, if it is known.
    pub fn known(&self) -> Option<&Authed> {
        match self {
            Identity::Known(a) => Some(a),
            Identity::Unchecked { .. } => None,
        }
    }

    /// Why unchecked credentials failed every rule that tried them (for the log).
    pub fn failures(&self) -> Vec<&str> {
        match self {
            Identity::Unchecked { tried, .. } => tried
                .iter()
                .filter_map(|(_, o)| match o {
                    Outcome::Fail(why) => Some(why.as_str()),
                    Outcome::Pass => None,
                })
                .collect(),
            Identity::Known(_) => Vec::new(),
        }
    }
}

/// A client's password, kept for a route that forwards it (`method: username`); never
/// printed.
pub(crate) struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The client side of a session as log lines show it: Dante's `method%user@` prefix when
/// the session has a user name, then the address.
pub(crate) struct Peer<'a>(pub &'a Session);

impl fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(Authed {
            method,
            user: Some(user),
            ..
        }) = self.0.auth.get()
        {
            write!(f, "{}%{}@", method.word(), shown(user))?;
        }
        write!(f, "{}", self.0.client)
    }
}

/// Whether `user` is listed in `rule.users`, or is in one of `rule.groups` (by primary
/// group, then by membership), as Dante's `usermatch()`/`groupmatch()`. Blocking when the
/// rule has groups (it asks the system's user and group databases).
pub(crate) fn name_matches(rule: &CompiledRule, user: &[u8]) -> bool {
    if rule.users.iter().any(|u| u.as_slice() == user) {
        return true;
    }
    if rule.groups.is_empty() {
        return false;
    }
    let Ok(name) = std::str::from_utf8(user) else {
        return false;
    };
    let primary = nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .and_then(|u| nix::unistd::Group::from_gid(u.gid).ok().flatten());
    if primary.is_some_and(|g| rule.groups.contains(&g.name)) {
        return true;
    }
    rule.groups.iter().any(|g| {
        nix::unistd::Group::from_name(g)
            .ok()
            .flatten()
            .is_some_and(|g| g.mem.iter().any(|m| m == name))
    })
}

/// Whether a known authentication meets the rule's method, clientmethod and name
/// conditions. Blocking when the rule has groups.
pub(crate) fn known_accepts(rule: &CompiledRule, a: &Authed) -> bool {
    if !rule.methods.is_empty() && !rule.methods.contains(&a.method) {
        return false;
    }
    if !rule.clientmethods.contains(&a.clientmethod) {
        return false;
    }
    if !rule.wants_name() {
        return true;
    }
    a.user.as_deref().is_some_and(|u| name_matches(rule, u))
}

/// Whether the session meets `rule`'s authentication conditions; unchecked credentials
/// are checked here against the rule's password methods, and the first that passes makes
/// the identity known.
pub(crate) async fn rule_accepts(sess: &Session, rule: &CompiledRule, id: &mut Identity) -> bool {
    if let Identity::Unchecked {
        user,
        password,
        clientmethod,
        tried,
    } = id
    {
        let mut passed = None;
        for m in &rule.methods {
            let Some(db) = sess.rt.db(*m, &rule.pam_service) else {
                continue;
            };
            let key = db_key(&db);
            let out = match tried.iter().find(|(k, _)| *k == key) {
                Some((_, o)) => o.clone(),
                None => {
                    let o = sess
                        .rt
                        .shared
                        .verifier
                        .check(&db, user, password, sess.client.ip())
                        .await;
                    tried.push((key, o.clone()));
                    o
                }
            };
            if out == Outcome::Pass {
                passed = Some(*m);
                break;
            }
        }
        let Some(method) = passed else {
            return false;
        };
        sess.keep_password(password);
        *id = Identity::Known(Authed {
            method,
            user: Some(std::mem::take(user)),
            clientmethod: *clientmethod,
        });
    }
    let Identity::Known(a) = id else {
        return false;
    };
    if rule.groups.is_empty() {
        return known_accepts(rule, a);
    }
    let (rule, a) = (rule.clone(), a.clone());
    tokio::task::spawn_blocking(move || known_accepts(&rule, &a))
        .await
        .unwrap_or(false)
}

/// A database's name, to remember which checks a session already ran.
fn db_key(db: &Db) -> String {
    match db {
        Db::System(k) => format!("{k:?}"),
        Db::File(f) => format!("file:{}", f.path().display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(users: &[&str], groups: &[&str], methods: &[Method]) -> CompiledRule {
        CompiledRule {
            users: users.iter().map(|u| u.as_bytes().to_vec()).collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            methods: methods.to_vec(),
            ..CompiledRule::default_block()
        }
    }

    fn authed(method: Method, user: Option<&str>) -> Authed {
        Authed {
            method,
            user: user.map(|u| u.as_bytes().to_vec()),
            clientmethod: Method::None,
        }
    }

    #[test]
    fn user_list_matches_exactly_and_needs_a_name() {
        let r = rule(&["alice", "bob"], &[], &[Method::Username]);
        assert!(known_accepts(&r, &authed(Method::Username, Some("alice"))));
        assert!(!known_accepts(&r, &authed(Method::Username, Some("Alice"))));
        assert!(!known_accepts(&r, &authed(Method::Username, Some("alic"))));
        assert!(!known_accepts(&r, &authed(Method::Username, None)));
        // The method is a condition too.
        assert!(!known_accepts(&r, &authed(Method::None, Some("alice"))));
    }

    #[test]
    fn group_matches_by_primary_group_and_by_membership() {
        // root's primary group is root on every Linux system.
        let r = rule(&[], &["root"], &[Method::Username]);
        assert!(known_accepts(&r, &authed(Method::Username, Some("root"))));
        assert!(!known_accepts(
            &r,
            &authed(Method::Username, Some("no-such-user-hasocks"))
        ));
        let r = rule(&[], &["no-such-group-hasocks"], &[Method::Username]);
        assert!(!known_accepts(&r, &authed(Method::Username, Some("root"))));
    }

    #[test]
    fn rule_without_conditions_takes_any_method() {
        let r = rule(&[], &[], &[]);
        assert!(known_accepts(&r, &authed(Method::None, None)));
    }
}
