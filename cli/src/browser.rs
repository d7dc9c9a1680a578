//! A small synchronous Chrome DevTools Protocol (CDP) client: launches a headless Chromium
//! (`RECON_CHROMIUM`, see `scripts/with-chromium.sh`), renders a local HTML file in a fresh tab
//! and reports what the page did: every request it made, its errors, the value of a check
//! script, its load time and a full-page PNG screenshot.
//!
//! One WebSocket to the browser, flattened sessions (each command to a tab carries its
//! `sessionId`), one command in flight at a time; events that arrive while waiting for a
//! response are queued and read afterwards.

use std::collections::VecDeque;
use std::fmt::Display;
use std::io::{BufRead as _, BufReader, ErrorKind};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// The outcome of a browser operation; the error says what failed, in words.
pub type Result<T> = std::result::Result<T, String>;

/// How long the browser may take to print its DevTools address, to answer a command, and a
/// page to fire its load event.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The flags of every launch, besides `--user-data-dir` and the first page.
const FLAGS: &str = "--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --mute-audio --hide-scrollbars --remote-debugging-port=0";
/// A full-page screenshot comes back base64-encoded in one message: allow up to 256 MiB.
const MAX_MESSAGE: usize = 256 << 20;

/// A running headless Chromium and the DevTools connection to it. Dropping it closes the
/// browser and removes its profile directory.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Events (messages with a `method` and no `id`) read while waiting for a response.
    events: VecDeque<Value>,
    /// Chromium's fresh profile; removed when this field drops, after `Drop::drop` has ended
    /// the browser.
    _profile: tempfile::TempDir,
}

/// What a page did when [`Browser::render`] loaded it.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The `file://` URL the page was loaded from.
    pub url: String,
    /// The URL of every request the page made (`Network.requestWillBeSent`) in order, its own
    /// document first; `data:` URLs are listed too. A request that a Content-Security-Policy
    /// refuses is never sent, so it is not here but in `errors`.
    pub requests: Vec<String>,
    /// Uncaught exceptions, `console.error` calls and error-level browser log entries (failed
    /// loads, CSP violations), one line each.
    pub errors: Vec<String>,
    /// The value of the check script (JSON; `null` when it returned `undefined`).
    pub value: Value,
    /// The page's load time as it measured it: `loadEventEnd` of its navigation entry,
    /// rounded to whole milliseconds.
    pub load_ms: u64,
    /// A PNG screenshot of the whole page (not only the viewport).
    pub png: Vec<u8>,
}

impl Browser {
    /// Starts `binary` headless with a fresh profile and connects to its DevTools WebSocket.
    pub fn launch(binary: &Path) -> Result<Self> {
        let name = binary.display();
        let profile = tempfile::Builder::new().prefix("recon-chromium-").tempdir();
        let profile = profile.map_err(|e| format!("creating a profile for {name}: {e}"))?;
        let mut child = Command::new(binary)
            .args(FLAGS.split_whitespace())
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        // A thread reads stderr to its end, so the browser never blocks on a full pipe; its
        // lines come here until the DevTools address is among them.
        let stderr = child
            .stderr
            .take()
            .ok_or(format!("no stderr pipe from {name}"))?;
        let (lines, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|line| line.ok()) {
                let _ = lines.send(line); // nobody listens once the address was found
            }
        });
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        let found = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => match line.strip_prefix("DevTools listening on ") {
                    Some(url) => break Ok(url.trim().to_owned()),
                    None => seen.push(line),
                },
                Err(RecvTimeoutError::Timeout) => break Err(format!("in {TIMEOUT:?}")),
                Err(RecvTimeoutError::Disconnected) => break Err("before it exited".to_owned()),
            }
        };
        let ws = match found {
            Ok(url) => connect(&url).map_err(|e| format!("connecting to {name} at {url}: {e}")),
            Err(e) => Err(format!(
                "{name} printed no 'DevTools listening on ws://…' line {e}; its stderr:\n{}",
                seen.join("\n")
            )),
        };
        match ws {
            Ok(ws) => Ok(Browser {
                child,
                ws,
                next_id: 0,
                events: VecDeque::new(),
                _profile: profile,
            }),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                Err(format!("{e}\n({name}: {status})"))
            }
        }
    }

    /// Sends one CDP command (to the tab of `session`, or to the browser when `None`) and
    /// returns its `result`; events read meanwhile are queued for later.
    pub fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        let sent = self.ws.send(Message::text(command.to_string()));
        sent.map_err(|e| format!("sending {method} to Chromium: {e}"))?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let message = self.read(deadline, method)?;
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    return Err(format!(
                        "CDP {method} failed: {} ({error})",
                        text(&error["message"])
                    ));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            if message.get("method").is_some() {
                self.events.push_back(message);
            }
        }
    }

    /// Loads `file` in a fresh `width`×`height` tab, waits for its load event, evaluates
    /// `js` there (the check script; a promise is awaited) and takes a full-page screenshot.
    pub fn render(&mut self, file: &Path, width: u32, height: u32, js: &str) -> Result<Rendered> {
        let target = self.call("Target.createTarget", json!({ "url": "about:blank" }), None)?;
        let target_id = field(&target, "targetId")?;
        let attach = json!({ "targetId": target_id, "flatten": true });
        let session = field(
            &self.call("Target.attachToTarget", attach, None)?,
            "sessionId",
        )?;
        let rendered = self.render_in(&session, file, (width, height), js);
        // Close the tab whatever happened; the render's own error comes first.
        let closed = self.call("Target.closeTarget", json!({ "targetId": target_id }), None);
        let rendered = rendered?;
        closed?;
        Ok(rendered)
    }

    fn render_in(
        &mut self,
        session: &str,
        file: &Path,
        size: (u32, u32),
        js: &str,
    ) -> Result<Rendered> {
        let s = Some(session);
        let metrics =
            json!({ "width": size.0, "height": size.1, "deviceScaleFactor": 1, "mobile": false });
        self.call("Emulation.setDeviceMetricsOverride", metrics, s)?;
        for domain in ["Network", "Page", "Runtime", "Log"] {
            self.call(&format!("{domain}.enable"), json!({}), s)?;
        }
        // Lifecycle events carry the navigation's loaderId, so a late load event of the tab's
        // first page (about:blank) can't be taken for this page's.
        self.call(
            "Page.setLifecycleEventsEnabled",
            json!({ "enabled": true }),
            s,
        )?;
        let mut out = Rendered {
            url: file_url(file)?,
            ..Rendered::default()
        };
        self.events.clear();
        let navigated = self.call("Page.navigate", json!({ "url": out.url }), s)?;
        if let Some(error) = navigated.get("errorText") {
            return Err(format!("navigating to {}: {error}", out.url));
        }
        let loader = field(&navigated, "loaderId")?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let event = match self.events.pop_front() {
                Some(event) => event,
                None => self.read(deadline, "the page's load event")?,
            };
            if event["sessionId"] != session {
                continue;
            }
            let params = &event["params"];
            let load = event["method"] == "Page.lifecycleEvent" && params["name"] == "load";
            if load && params["loaderId"] == loader.as_str() {
                break;
            }
            out.note(&event);
        }
        out.value = self.evaluate(session, js)?;
        let load = "Math.round(performance.getEntriesByType('navigation')[0].loadEventEnd)";
        let load_ms = self.evaluate(session, load)?;
        out.load_ms = load_ms
            .as_u64()
            .ok_or(format!("loadEventEnd is {load_ms}, not whole ms"))?;
        // The whole page: clip to the content size (CSS pixels, passed on as the JSON numbers
        // they came as, never a float here) and let the capture go beyond the viewport.
        let layout = self.call("Page.getLayoutMetrics", json!({}), s)?;
        let (w, h) = (
            &layout["cssContentSize"]["width"],
            &layout["cssContentSize"]["height"],
        );
        let clip = json!({ "x": 0, "y": 0, "width": w, "height": h, "scale": 1 });
        let shot = json!({ "format": "png", "captureBeyondViewport": true, "clip": clip });
        let shot = field(&self.call("Page.captureScreenshot", shot, s)?, "data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(shot);
        out.png = png.map_err(|e| format!("decoding the screenshot: {e}"))?;
        // What the page did while the checks ran counts too.
        for event in std::mem::take(&mut self.events) {
            if event["sessionId"] == session {
                out.note(&event);
            }
        }
        Ok(out)
    }

    /// `Runtime.evaluate` by value, awaiting a promise; a thrown exception is an error.
    fn evaluate(&mut self, session: &str, expression: &str) -> Result<Value> {
        let params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let result = self.call("Runtime.evaluate", params, Some(session))?;
        if let Some(details) = result.get("exceptionDetails") {
            return Err(format!(
                "evaluating `{expression}` threw: {}",
                exception(details)
            ));
        }
        Ok(result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// The next JSON message from the browser, waiting until `deadline` at most.
    fn read(&mut self, deadline: Instant, waiting_for: &str) -> Result<Value> {
        let timeout = format!("Chromium did not answer {waiting_for} within {TIMEOUT:?}");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout);
            }
            self.ws
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(words)?;
            let error = match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str()).map_err(words);
                }
                Ok(Message::Close(_)) => "Chromium closed the DevTools connection".to_owned(),
                Ok(_) => continue, // ping, pong, binary: nothing CDP says
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    timeout
                }
                Err(e) => format!("reading from Chromium ({waiting_for}): {e}"),
            };
            return Err(error);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask the browser to close (it then ends its renderers too), give it 5 s, then kill it.
        let close = json!({ "id": self.next_id + 1, "method": "Browser.close" });
        if self.ws.send(Message::text(close.to_string())).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rendered {
    /// Records what an event of the page's session says about requests and errors.
    fn note(&mut self, event: &Value) {
        let params = &event["params"];
        let entry = &params["entry"];
        match event["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                self.requests.push(text(&params["request"]["url"]))
            }
            Some("Runtime.exceptionThrown") => {
                self.errors.push(exception(&params["exceptionDetails"]))
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                let args = params["args"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let args = args
                    .iter()
                    .map(|a| text(a.get("value").unwrap_or(&a["description"])));
                self.errors.push(format!(
                    "console.error: {}",
                    args.collect::<Vec<_>>().join(" ")
                ));
            }
            Some("Log.entryAdded") if entry["level"] == "error" => {
                self.errors.push(format!(
                    "log: {} ({})",
                    text(&entry["text"]),
                    text(&entry["url"])
                ));
            }
            _ => {}
        }
    }
}

/// Connects to the DevTools WebSocket at `url` (`ws://host:port/devtools/browser/…`).
fn connect(url: &str) -> Result<WebSocket<TcpStream>> {
    let host = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next());
    let stream = TcpStream::connect(host.ok_or("not a ws:// URL")?).map_err(words)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(words)?;
    let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE));
    let config = config.max_frame_size(Some(MAX_MESSAGE));
    let connected = tungstenite::client::client_with_config(url, stream, Some(config));
    Ok(connected.map_err(words)?.0)
}

/// The `file://` URL of `file` (made absolute), with every byte outside `A–Z a–z 0–9 -._~/`
/// percent-encoded.
fn file_url(file: &Path) -> Result<String> {
    let path = std::fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let path = path
        .to_str()
        .ok_or(format!("{} is not UTF-8", path.display()))?;
    let mut url = String::from("file://");
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                url.push(char::from(byte));
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    Ok(url)
}

/// The string field `name` of a CDP result.
fn field(result: &Value, name: &str) -> Result<String> {
    result[name]
        .as_str()
        .map(str::to_owned)
        .ok_or(format!("no {name} in {result}"))
}

/// A JSON value as text: a string without its quotes, anything else as JSON.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// One line for a CDP `ExceptionDetails`: the exception's description, else its text.
fn exception(details: &Value) -> String {
    let description = &details["exception"]["description"];
    text(if description.is_string() {
        description
    } else {
        &details["text"]
    })
}

/// An error in words.
fn words(error: impl Display) -> String {
    error.to_string()
}
