//! Build-time variables and where they come from: the global scope (ARGs before the first
//! FROM, plus the automatic platform ARGs) and each stage's scope (its ARGs and ENVs, the
//! global defaults it redeclares, what it inherits from a parent stage).
//! Must not touch: word syntax (`expand`) or instructions (`walk`).

use std::collections::HashMap;

use super::expand::{Var, Vars};
use super::{ArgDefault, Platform};

/// A variable's value as far as the Dockerfile tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    /// Declared without a value (`ARG X`, nothing to inherit).
    Unset,
    Known(String),
    /// Given a value that needs a variable without one (why).
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// A global `ARG` (its default, when it has one, is the value).
    Global(ArgDefault),
    Automatic,
    StageArg,
    Env,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: Value,
    origin: Origin,
}

/// The variables in effect at one point of a Dockerfile.
#[derive(Debug, Clone, Default)]
pub(super) struct Scope {
    vars: HashMap<String, Entry>,
}

impl Scope {
    /// The global scope before any ARG: BUILD* and TARGET* for `platform`.
    pub fn global(platform: &Platform) -> Scope {
        let full = platform.to_string();
        let variant = platform.variant.clone().unwrap_or_default();
        let parts = [
            ("PLATFORM", &full),
            ("OS", &platform.os),
            ("ARCH", &platform.arch),
            ("VARIANT", &variant),
        ];
        let mut scope = Scope::default();
        for prefix in ["BUILD", "TARGET"] {
            for (suffix, value) in parts {
                let entry = Entry {
                    value: Value::Known(value.clone()),
                    origin: Origin::Automatic,
                };
                scope.vars.insert(format!("{prefix}{suffix}"), entry);
            }
        }
        scope
    }

    /// A global `ARG`; without a value it leaves a value already there (an automatic ARG,
    /// an earlier declaration) alone.
    pub fn global_arg(&mut self, decl: ArgDefault, value: Option<Value>) {
        let name = decl.name.clone();
        let origin = Origin::Global(decl);
        match value {
            Some(value) => {
                self.vars.insert(name, Entry { value, origin });
            }
            None => {
                let value = Value::Unset;
                self.vars.entry(name).or_insert(Entry { value, origin });
            }
        }
    }

    /// A stage `ARG`. Without a value it takes the global default (or the automatic value)
    /// if there is one, else keeps what the stage already has. An ENV of the same name wins
    /// over any ARG.
    pub fn stage_arg(&mut self, name: &str, value: Option<Value>, global: &Scope) {
        if self.vars.get(name).is_some_and(|e| e.origin == Origin::Env) {
            return;
        }
        let entry = match (value, global.valued(name)) {
            (Some(value), _) => Entry {
                value,
                origin: Origin::StageArg,
            },
            (None, Some(inherited)) => inherited.clone(),
            (None, None) if self.vars.contains_key(name) => return,
            (None, None) => Entry {
                value: Value::Unset,
                origin: Origin::StageArg,
            },
        };
        self.vars.insert(name.to_owned(), entry);
    }

    pub fn env(&mut self, name: &str, value: Value) {
        let origin = Origin::Env;
        self.vars.insert(name.to_owned(), Entry { value, origin });
    }

    /// The global ARG whose default `name` holds here, if it holds one.
    pub fn arg_default(&self, name: &str) -> Option<ArgDefault> {
        match self.valued(name)? {
            Entry {
                origin: Origin::Global(decl),
                ..
            } => Some(decl.clone()),
            _ => None,
        }
    }

    fn valued(&self, name: &str) -> Option<&Entry> {
        self.vars.get(name).filter(|e| e.value != Value::Unset)
    }
}

/// A scope seen from an instruction: a stage's (with the global one, to explain what is not
/// visible) or the global one itself (`global: None`).
pub(super) struct Lookup<'a> {
    pub scope: &'a Scope,
    pub global: Option<&'a Scope>,
}

impl Vars for Lookup<'_> {
    fn get(&self, name: &str) -> Var<'_> {
        match self.scope.vars.get(name).map(|e| &e.value) {
            Some(Value::Known(value)) => Var::Set(value),
            Some(Value::Unknown(why)) => Var::Unknown(why),
            Some(Value::Unset) | None => Var::Unset(self.why_unset(name)),
        }
    }
}

impl Lookup<'_> {
    fn why_unset(&self, name: &str) -> String {
        let global = self.global.and_then(|g| g.valued(name));
        match global.map(|e| &e.origin) {
            Some(Origin::Automatic) => format!(
                "{name} is automatic only before the first FROM \
                 (redeclare it in this stage: ARG {name})"
            ),
            Some(_) => format!(
                "{name} is a global ARG, not visible in this stage \
                 (redeclare it in this stage: ARG {name})"
            ),
            None => format!("{name} has no value (declare it with a default: ARG {name}=...)"),
        }
    }
}
