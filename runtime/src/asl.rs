//! A local interpreter of Amazon States Language, so `recon run` executes the very
//! `statemachines/daily-close.asl.json` that Step Functions runs in the cloud.
//!
//! Supported: `Task`, `Map` (inline `ItemProcessor`/`Iterator`, `ItemsPath`, `ItemSelector`;
//! up to `MaxConcurrency` iterations at once on the machine's cores), `Pass`, `Choice` (string/numeric/boolean comparisons,
//! `IsPresent`, `And`/`Or`/`Not`), `Succeed`, `Fail` (`Error`/`Cause`, `CausePath`);
//! `InputPath`, `Parameters`, `ResultSelector`, `ResultPath`, `OutputPath`; `Retry`
//! (`ErrorEquals`, `IntervalSeconds`, `MaxAttempts`, `BackoffRate`) and `Catch`; the context
//! object (`$$.Execution.Name`, `$$.Map.Item.Value`, `$$.Map.Item.Index`); the intrinsics
//! `States.Format`, `States.Array` and `States.StringToJson`. Anything else is refused with a clear error.
//!
//! As on AWS: a state's output or a task's result above 256 KiB fails the execution with
//! `States.DataLimitExceeded`, which no `Retry` or `Catch` handles (nor `States.Runtime`);
//! `MaxAttempts` counts retries (3: four invocations); a failed Lambda's cause is its error
//! object in JSON text (`close::lambda_failure`).

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value, json};

/// A task's failure as Step Functions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// The future a task invocation returns.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs the `Resource` of a `Task` state.
pub trait Tasks: Send + Sync {
    fn invoke<'a>(&'a self, resource: &'a str, input: Value) -> BoxFut<'a, Result<Value, Failure>>;
}

/// One step of an execution, for the run report and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Entered(String),
    Retried {
        state: String,
        attempt: u32,
        error: String,
    },
    Caught {
        state: String,
        error: String,
        next: String,
    },
}

pub struct Execution<'a, T: Tasks> {
    pub name: String,
    pub tasks: &'a T,
    /// Sleep between retries as `IntervalSeconds × BackoffRate^n × time_scale` seconds.
    #[allow(clippy::disallowed_types)] // a wait-time multiplier, not money
    pub time_scale: f64,
    pub events: std::sync::Mutex<Vec<Event>>,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Value),
    Failed(Failure),
}

#[derive(Clone)]
struct Ctx {
    execution: String,
    item: Option<(Value, usize)>,
}

impl Ctx {
    fn context(&self) -> Value {
        let mut c = json!({"Execution": {"Name": self.execution}});
        if let Some((v, i)) = &self.item {
            c["Map"] = json!({"Item": {"Value": v, "Index": i}});
        }
        c
    }
}

fn invalid(msg: impl Into<String>) -> Failure {
    Failure::new("States.Runtime", msg)
}

/// Reads `$`, `$.a.b`, `$.a[0]`, or `$$…` (the context object).
fn path_get(path: &str, input: &Value, ctx: &Ctx) -> Result<Value, Failure> {
    let (root, rest) = if let Some(r) = path.strip_prefix("$$") {
        (ctx.context(), r)
    } else if let Some(r) = path.strip_prefix('$') {
        (input.clone(), r)
    } else {
        return Err(invalid(format!("`{path}` is not a JSONPath")));
    };
    let mut cur = root;
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        let (name, idx) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = cur
                .get(name)
                .cloned()
                .ok_or_else(|| invalid(format!("`{path}`: no field `{name}`")))?;
        }
        if let Some(i) = idx {
            cur = cur
                .get(i)
                .cloned()
                .ok_or_else(|| invalid(format!("`{path}`: no index {i}")))?;
        }
    }
    Ok(cur)
}

/// Writes `value` at `path` (`$` replaces the whole document).
fn path_set(doc: &mut Value, path: &str, value: Value) -> Result<(), Failure> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| invalid(format!("`{path}` is not a JSONPath")))?;
    let segs: Vec<&str> = rest.split('.').filter(|s| !s.is_empty()).collect();
    let Some((last, parents)) = segs.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut cur = doc;
    for s in parents {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = cur
            .as_object_mut()
            .map(|o| o.entry(s.to_string()).or_insert(json!({})))
            .ok_or_else(|| invalid("ResultPath"))?;
    }
    if !cur.is_object() {
        *cur = json!({});
    }
    if let Some(o) = cur.as_object_mut() {
        o.insert(last.to_string(), value);
    }
    Ok(())
}

/// Splits intrinsic arguments at top-level commas (quotes and parentheses respected).
fn split_args(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn eval_expr(expr: &str, input: &Value, ctx: &Ctx) -> Result<Value, Failure> {
    let e = expr.trim();
    if e.starts_with('$') {
        return path_get(e, input, ctx);
    }
    if let Some(lit) = e.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Ok(Value::String(lit.to_string()));
    }
    if let Ok(n) = e.parse::<i64>() {
        return Ok(json!(n));
    }
    let (name, args) = e
        .split_once('(')
        .and_then(|(n, a)| a.strip_suffix(')').map(|a| (n.trim(), a)))
        .ok_or_else(|| invalid(format!("cannot evaluate `{e}`")))?;
    let args: Vec<Value> = split_args(args)
        .iter()
        .map(|a| eval_expr(a, input, ctx))
        .collect::<Result<_, _>>()?;
    match name {
        "States.Array" => Ok(Value::Array(args)),
        "States.StringToJson" => match args.as_slice() {
            [Value::String(s)] => serde_json::from_str(s)
                .map_err(|e| invalid(format!("States.StringToJson: not JSON: {e}"))),
            _ => Err(invalid("States.StringToJson needs one string")),
        },
        "States.Format" => {
            let template = args
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("States.Format needs a template"))?;
            let mut out = String::new();
            let mut rest = args[1..].iter();
            let mut parts = template.split("{}").peekable();
            while let Some(p) = parts.next() {
                out.push_str(p);
                if parts.peek().is_some() {
                    match rest.next() {
                        Some(Value::String(s)) => out.push_str(s),
                        Some(v) => out.push_str(&v.to_string()),
                        None => return Err(invalid("States.Format: too few arguments")),
                    }
                }
            }
            Ok(Value::String(out))
        }
        other => Err(invalid(format!(
            "intrinsic `{other}` is not supported locally"
        ))),
    }
}

/// Applies a `Parameters`/`ItemSelector`/`ResultSelector` template.
fn apply_template(t: &Value, input: &Value, ctx: &Ctx) -> Result<Value, Failure> {
    match t {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, v) in o {
                match (k.strip_suffix(".$"), v) {
                    (Some(key), Value::String(expr)) => {
                        out.insert(key.to_string(), eval_expr(expr, input, ctx)?);
                    }
                    _ => {
                        out.insert(k.clone(), apply_template(v, input, ctx)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => Ok(Value::Array(
            a.iter()
                .map(|v| apply_template(v, input, ctx))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

fn str_field<'v>(state: &'v Value, key: &str) -> Option<&'v str> {
    state.get(key).and_then(Value::as_str)
}

/// `InputPath` then `Parameters` (with the context object).
fn effective_input(state: &Value, input: &Value, ctx: &Ctx) -> Result<Value, Failure> {
    let i = match state.get("InputPath") {
        Some(Value::Null) => json!({}),
        Some(Value::String(p)) => path_get(p, input, ctx)?,
        _ => input.clone(),
    };
    match state.get("Parameters") {
        Some(t) => apply_template(t, &i, ctx),
        None => Ok(i),
    }
}

/// `ResultPath` then `OutputPath`.
fn output(state: &Value, input: &Value, result: Value, ctx: &Ctx) -> Result<Value, Failure> {
    let mut doc = match state.get("ResultPath") {
        Some(Value::Null) => input.clone(),
        Some(Value::String(p)) => {
            let mut d = input.clone();
            path_set(&mut d, p, result)?;
            d
        }
        _ => result,
    };
    if let Some(Value::String(p)) = state.get("OutputPath") {
        doc = path_get(p, &doc, ctx)?;
    }
    Ok(doc)
}

/// The largest state input, output or task result Step Functions passes: 256 KiB of UTF-8.
pub const PAYLOAD_LIMIT_BYTES: usize = 256 * 1024;

/// Errors no `Retry` or `Catch` handles on AWS, `States.ALL` included: the execution fails.
const TERMINAL: &[&str] = &["States.DataLimitExceeded", "States.Runtime"];

/// `doc` as a state passes it on, or `States.DataLimitExceeded` when it is above the limit.
fn within_limit(doc: Value, what: &str) -> Result<Value, Failure> {
    let size = serde_json::to_vec(&doc).map_or(usize::MAX, |v| v.len());
    if size > PAYLOAD_LIMIT_BYTES {
        return Err(Failure::new(
            "States.DataLimitExceeded",
            format!("the {what} is {size} bytes, above Step Functions' {PAYLOAD_LIMIT_BYTES}"),
        ));
    }
    Ok(doc)
}

fn matches(errors: &Value, error: &str) -> bool {
    !TERMINAL.contains(&error)
        && errors.as_array().is_some_and(|a| {
            a.iter().filter_map(Value::as_str).any(|e| {
                e == error
                    || e == "States.ALL"
                    || (e == "States.TaskFailed" && error != "States.Timeout")
            })
        })
}

fn choice(rule: &Value, input: &Value, ctx: &Ctx) -> Result<bool, Failure> {
    if let Some(a) = rule.get("And").and_then(Value::as_array) {
        return a
            .iter()
            .try_fold(true, |acc, r| Ok(acc && choice(r, input, ctx)?));
    }
    if let Some(a) = rule.get("Or").and_then(Value::as_array) {
        return a
            .iter()
            .try_fold(false, |acc, r| Ok(acc || choice(r, input, ctx)?));
    }
    if let Some(r) = rule.get("Not") {
        return Ok(!choice(r, input, ctx)?);
    }
    let var = str_field(rule, "Variable").ok_or_else(|| invalid("Choice rule without Variable"))?;
    let value = path_get(var, input, ctx);
    if let Some(want) = rule.get("IsPresent").and_then(Value::as_bool) {
        return Ok(value.is_ok() == want);
    }
    let v = value?;
    let num = |k: &str| rule.get(k).and_then(Value::as_i64).zip(v.as_i64());
    Ok(if let Some((want, got)) = num("NumericGreaterThan") {
        got > want
    } else if let Some((want, got)) = num("NumericEquals") {
        got == want
    } else if let Some((want, got)) = num("NumericLessThan") {
        got < want
    } else if let Some(want) = rule.get("StringEquals") {
        &v == want
    } else if let Some(want) = rule.get("BooleanEquals") {
        &v == want
    } else {
        return Err(invalid(format!(
            "Choice rule not supported locally: {rule}"
        )));
    })
}

impl<'a, T: Tasks> Execution<'a, T> {
    pub fn new(name: impl Into<String>, tasks: &'a T) -> Self {
        Self {
            name: name.into(),
            tasks,
            time_scale: 0.0,
            events: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn log(&self, e: Event) {
        if let Ok(mut v) = self.events.lock() {
            v.push(e);
        }
    }

    /// Runs the state machine `definition` on `input`.
    pub async fn run(&self, definition: &Value, input: Value) -> Outcome {
        let ctx = Ctx {
            execution: self.name.clone(),
            item: None,
        };
        match self.states(definition, input, &ctx).await {
            Ok(v) => Outcome::Succeeded(v),
            Err(f) => Outcome::Failed(f),
        }
    }

    fn states<'s>(
        &'s self,
        machine: &'s Value,
        input: Value,
        ctx: &'s Ctx,
    ) -> BoxFut<'s, Result<Value, Failure>> {
        Box::pin(async move {
            let states = machine.get("States").ok_or_else(|| invalid("no States"))?;
            let mut name = str_field(machine, "StartAt")
                .ok_or_else(|| invalid("no StartAt"))?
                .to_string();
            let mut input = input;
            loop {
                let state = states
                    .get(&name)
                    .ok_or_else(|| invalid(format!("no state `{name}`")))?;
                self.log(Event::Entered(name.clone()));
                let ty = str_field(state, "Type").unwrap_or_default();
                let next = str_field(state, "Next").map(str::to_string);
                let end = state.get("End").and_then(Value::as_bool).unwrap_or(false);
                let result = match ty {
                    "Pass" => {
                        let eff = effective_input(state, &input, ctx)?;
                        let r = state.get("Result").cloned().unwrap_or(eff);
                        output(state, &input, r, ctx)
                    }
                    "Task" | "Map" => match self.work(state, &name, &input, ctx).await {
                        Ok(r) => output(state, &input, r, ctx),
                        Err(f) => match self.catch(state, &name, &input, &f)? {
                            Some((doc, to)) => {
                                input = doc;
                                name = to;
                                continue;
                            }
                            None => Err(f),
                        },
                    },
                    "Choice" => {
                        let choices = state
                            .get("Choices")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        let mut to = str_field(state, "Default").map(str::to_string);
                        for c in &choices {
                            if choice(c, &input, ctx)? {
                                to = str_field(c, "Next").map(str::to_string);
                                break;
                            }
                        }
                        name = to.ok_or_else(|| {
                            Failure::new(
                                "States.NoChoiceMatched",
                                format!("no choice matched in `{name}`"),
                            )
                        })?;
                        continue;
                    }
                    "Succeed" => return Ok(input),
                    "Fail" => {
                        let error = str_field(state, "Error")
                            .unwrap_or("States.Fail")
                            .to_string();
                        let cause = match str_field(state, "CausePath") {
                            Some(p) => path_get(p, &input, ctx)
                                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                                .unwrap_or_default(),
                            None => str_field(state, "Cause").unwrap_or_default().to_string(),
                        };
                        return Err(Failure::new(error, cause));
                    }
                    other => Err(invalid(format!(
                        "state type `{other}` is not supported locally"
                    ))),
                };
                input = within_limit(result?, &format!("output of `{name}`"))?;
                match (end, next) {
                    (true, _) | (false, None) => return Ok(input),
                    (false, Some(n)) => name = n,
                }
            }
        })
    }

    /// The state's work with its `Retry` policy: a task invocation or a Map.
    // `Retry` waits: ASL's `IntervalSeconds` and `BackoffRate` are JSON numbers of seconds,
    // not money.
    #[allow(clippy::disallowed_methods)]
    async fn work(
        &self,
        state: &Value,
        name: &str,
        input: &Value,
        ctx: &Ctx,
    ) -> Result<Value, Failure> {
        let retriers = state
            .get("Retry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut attempts = vec![0u32; retriers.len()];
        loop {
            let r = match str_field(state, "Type") {
                Some("Map") => self.map(state, input, ctx).await,
                _ => {
                    let resource = str_field(state, "Resource")
                        .ok_or_else(|| invalid(format!("`{name}` has no Resource")))?;
                    let eff = effective_input(state, input, ctx)?;
                    self.tasks.invoke(resource, eff).await
                }
            };
            let f = match r.and_then(|v| within_limit(v, &format!("result of `{name}`"))) {
                Ok(v) => {
                    return match state.get("ResultSelector") {
                        Some(t) => apply_template(t, &v, ctx),
                        None => Ok(v),
                    };
                }
                Err(f) => f,
            };
            let Some(i) = retriers
                .iter()
                .position(|r| matches(&r["ErrorEquals"], &f.error))
            else {
                return Err(f);
            };
            let max = retriers[i]
                .get("MaxAttempts")
                .and_then(Value::as_u64)
                .unwrap_or(3) as u32;
            if attempts[i] >= max {
                return Err(f);
            }
            attempts[i] += 1;
            self.log(Event::Retried {
                state: name.to_string(),
                attempt: attempts[i],
                error: f.error.clone(),
            });
            let interval = retriers[i]
                .get("IntervalSeconds")
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            let backoff = retriers[i]
                .get("BackoffRate")
                .and_then(Value::as_f64)
                .unwrap_or(2.0);
            #[allow(clippy::float_arithmetic)] // a wait time, not money
            let secs = interval * backoff.powi(attempts[i] as i32 - 1) * self.time_scale;
            if secs > 0.0 {
                tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
            }
        }
    }

    async fn map(&self, state: &Value, input: &Value, ctx: &Ctx) -> Result<Value, Failure> {
        let eff = match state.get("InputPath") {
            Some(Value::String(p)) => path_get(p, input, ctx)?,
            _ => input.clone(),
        };
        let items = match str_field(state, "ItemsPath") {
            Some(p) => path_get(p, &eff, ctx)?,
            None => eff.clone(),
        };
        let items = items
            .as_array()
            .cloned()
            .ok_or_else(|| invalid("ItemsPath is not an array"))?;
        let processor = state
            .get("ItemProcessor")
            .or_else(|| state.get("Iterator"))
            .ok_or_else(|| invalid("Map without ItemProcessor"))?;
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let ictx = Ctx {
                execution: ctx.execution.clone(),
                item: Some((item.clone(), i)),
            };
            let item_input = match state
                .get("ItemSelector")
                .or_else(|| state.get("Parameters"))
            {
                Some(t) => apply_template(t, &eff, &ictx)?,
                None => item,
            };
            inputs.push((item_input, ictx));
        }
        // Up to `MaxConcurrency` iterations at once (0: no limit), one thread each, as many as
        // the machine has cores; results keep the items' order.
        let max = state
            .get("MaxConcurrency")
            .and_then(Value::as_u64)
            .filter(|m| *m > 0)
            .unwrap_or(u64::MAX);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = (max.min(cores as u64) as usize).min(inputs.len()).max(1);
        if workers == 1 {
            let mut results = Vec::with_capacity(inputs.len());
            for (input, ictx) in inputs {
                results.push(self.states(processor, input, &ictx).await?);
            }
            return Ok(Value::Array(results));
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Result<Value, Failure>>>> =
            inputs.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    // IO too: tasks bound to the AWS adapters make HTTP calls.
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((input, ictx)) = inputs.get(i) else {
                            break;
                        };
                        let r = rt.block_on(self.states(processor, input.clone(), ictx));
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        let mut results = Vec::with_capacity(slots.len());
        for slot in slots {
            let r = slot
                .into_inner()
                .ok()
                .flatten()
                .ok_or_else(|| invalid("a Map iteration did not finish"))?;
            results.push(r?);
        }
        Ok(Value::Array(results))
    }

    /// The first matching `Catch`: the document to continue with and the next state.
    fn catch(
        &self,
        state: &Value,
        name: &str,
        input: &Value,
        f: &Failure,
    ) -> Result<Option<(Value, String)>, Failure> {
        let catchers = state
            .get("Catch")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(c) = catchers
            .iter()
            .find(|c| matches(&c["ErrorEquals"], &f.error))
        else {
            return Ok(None);
        };
        let next = str_field(c, "Next")
            .ok_or_else(|| invalid("Catch without Next"))?
            .to_string();
        let err = json!({"Error": f.error, "Cause": f.cause});
        let doc = match c.get("ResultPath") {
            Some(Value::Null) => input.clone(),
            Some(Value::String(p)) => {
                let mut d = input.clone();
                path_set(&mut d, p, err)?;
                d
            }
            _ => err,
        };
        self.log(Event::Caught {
            state: name.to_string(),
            error: f.error.clone(),
            next: next.clone(),
        });
        Ok(Some((doc, next)))
    }
}

#[cfg(test)]
mod tests;
