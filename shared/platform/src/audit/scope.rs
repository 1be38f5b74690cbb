//! The audit scope a handler runs in: a task-local slot the API and use-case layers fill
//! (what the act was about, for whom, with which details) and the layer reads once the
//! handler has returned. Outside a scope (deadline workers, event consumers, unit tests of
//! a core) every function here does nothing.

use std::{
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use serde_json::{Map, Value};

tokio::task_local! {
    static SLOT: Arc<Mutex<Filled>>;
}

/// What a handler put in its scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filled {
    /// One record per target; none named means one record without a target.
    pub targets: Vec<String>,
    pub on_behalf_of: Option<String>,
    pub detail: Map<String, Value>,
}

impl Filled {
    /// Whether the handler named anything the act was about: such a call is recorded
    /// even when its RPC is not on the service's audited list.
    pub fn is_privileged(&self) -> bool {
        !self.targets.is_empty()
    }
}

/// Runs handlers inside audit scopes.
#[derive(Debug, Clone, Copy)]
pub struct Scope;

impl Scope {
    /// Runs `handler` in a fresh scope; its output and what it filled in.
    pub async fn run<F: Future>(handler: F) -> (F::Output, Filled) {
        let slot = Arc::new(Mutex::new(Filled::default()));
        let output = SLOT.scope(slot.clone(), handler).await;
        let filled = std::mem::take(&mut *slot.lock().unwrap_or_else(PoisonError::into_inner));
        (output, filled)
    }

    /// Whether the current task is inside a scope.
    pub fn active() -> bool {
        SLOT.try_with(|_| ()).is_ok()
    }
}

fn fill(f: impl FnOnce(&mut Filled)) -> bool {
    SLOT.try_with(|slot| f(&mut slot.lock().unwrap_or_else(PoisonError::into_inner)))
        .is_ok()
}

/// Names what the current act is about (`partner:p-1`, `customer:c-9`), and so makes it
/// recorded. Several targets give one record each. False outside a scope.
pub fn target(target: impl Into<String>) -> bool {
    let target = target.into();
    fill(|filled| {
        if !filled.targets.contains(&target) {
            filled.targets.push(target);
        }
    })
}

/// Adds a detail to the current act's record (`purpose`, `fields`, …).
pub fn note(key: &str, value: impl Into<Value>) {
    let value = value.into();
    fill(|filled| {
        filled.detail.insert(key.to_owned(), value);
    });
}

/// The end user a service account acts for in the current act.
pub fn acting_for(user: &str) {
    fill(|filled| filled.on_behalf_of = Some(user.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_collects_what_the_handler_names_and_nothing_leaks_outside() {
        assert!(!target("x:1"));
        let ((), filled) = Scope::run(async {
            assert!(Scope::active());
            target("partner:p-1");
            target("partner:p-1");
            target("key:k-1");
            note("purpose", "a complaint");
            acting_for("u-7");
        })
        .await;
        assert!(filled.is_privileged());
        assert_eq!(filled.targets, ["partner:p-1", "key:k-1"]);
        assert_eq!(filled.on_behalf_of.as_deref(), Some("u-7"));
        assert_eq!(filled.detail["purpose"], "a complaint");
        assert!(!Scope::active());
        let ((), empty) = Scope::run(async {}).await;
        assert!(!empty.is_privileged());
    }
}
