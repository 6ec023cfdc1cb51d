//! `stablebuild config`: every global and serve setting in effect, and where it came from
//! (flag, environment, config file, default). Secrets show as `<set>`. Opens no store.

use std::process::ExitCode;

use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::{UsageError, print_json};
use crate::cli::{ConfigArgs, Global};
use crate::settings::{Setting, Settings, Value};

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "KEY")]
    key: String,
    #[tabled(rename = "VALUE")]
    value: String,
    #[tabled(rename = "FOR")]
    scope: String,
    #[tabled(rename = "SOURCE")]
    source: String,
}

pub fn run(global: &Global, settings: &Settings, _args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let report = settings
        .report()
        .map_err(|e| UsageError(e.render().to_string().trim().to_string()))?;
    if global.json {
        let object: serde_json::Map<_, _> =
            report.iter().map(|s| (s.key.clone(), json(s))).collect();
        print_json(&object);
    } else {
        let mut table = Table::new(report.iter().map(row));
        table.with(Style::blank());
        println!("{table}");
    }
    Ok(ExitCode::SUCCESS)
}

fn row(s: &Setting) -> Row {
    let value = match &s.value {
        Value::Unset => "-".to_string(),
        Value::Secret => "<set>".to_string(),
        Value::Flag(b) => b.to_string(),
        Value::Count(n) => n.to_string(),
        Value::One(v) => v.clone(),
        Value::Many(vs) if vs.is_empty() => "-".to_string(),
        Value::Many(vs) => vs.join(","),
    };
    Row {
        key: s.key.clone(),
        value,
        scope: s.scope.to_string(),
        source: s.source.to_string(),
    }
}

fn json(s: &Setting) -> serde_json::Value {
    let value = match &s.value {
        Value::Unset => serde_json::Value::Null,
        Value::Secret => "<set>".into(),
        Value::Flag(b) => (*b).into(),
        Value::Count(n) => (*n).into(),
        Value::One(v) => v.as_str().into(),
        Value::Many(vs) => vs.as_slice().into(),
    };
    serde_json::json!({
        "value": value,
        "for": s.scope.to_string(),
        "source": s.source.to_string(),
    })
}
