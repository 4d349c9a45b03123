// ddsp-gym prefer: the page. Plain JS, no libraries, nothing fetched but this server's API.
"use strict";

const COLORS = ["#0a64d8", "#d8430a", "#1a9641", "#8e44ad", "#b8860b", "#e7298a",
                "#17becf", "#555555"];
let sessionId = null;
let state = null;
let busy = false;

const $ = (id) => document.getElementById(id);

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    const error = new Error(detail || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function fmt(value) {
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 0.01 || abs >= 10000)) return value.toExponential(2);
  return value.toPrecision(4).replace(/\.?0+$/, "");
}

function setAudio(side, url) {
  const audio = $("audio-" + side);
  if (audio.dataset.src !== url) {
    audio.dataset.src = url;
    audio.src = url;
  }
}

function show(newState) {
  state = newState;
  document.body.dataset.pair = String(state.pair.id);
  document.body.dataset.votes = String(state.votes);
  $("sound").textContent = `${state.sound} on the ${state.backend} backend · session ${state.session}`;
  if (!state.device) {
    setAudio("a", state.pair.a.audio);
    setAudio("b", state.pair.b.audio);
  } else if (document.body.dataset.shownPair !== String(state.pair.id)) {
    // On a synth, fetching a candidate plays it in the room: only "play" does that.
    for (const side of ["a", "b"]) $("audio-" + side).removeAttribute("src");
  }
  document.body.dataset.shownPair = String(state.pair.id);
  $("votes").textContent = String(state.votes);
  const c = state.counts;
  $("counts").textContent = `A ${c.a}, B ${c.b}, both bad ${c.both_bad}`;
  $("undo").disabled = state.votes === 0;
  const body = $("knobs").querySelector("tbody");
  body.replaceChildren();
  state.knobs.forEach((knob, i) => {
    const row = document.createElement("tr");
    const unit = state.best.unit[i];
    const value = state.best.knobs[knob.name];
    row.innerHTML = "<td></td><td></td><td><span class='bar'></span></td>";
    row.children[0].textContent = knob.name;
    row.children[1].textContent = `${fmt(value)} ${knob.unit}`.trim();
    row.children[2].firstChild.style.width = `${Math.round(unit * 100)}%`;
    row.children[2].title = `${Math.round(unit * 100)}% of its travel`;
    body.appendChild(row);
  });
  if (state.recovered) setStatus("Recovered after a crash: " + state.recovered);
  drawPlot();
}

function drawPlot() {
  // The best patch's knob positions (unit travel) after each vote: where the search went.
  const svg = $("plot");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const W = 640, H = 220, pad = 28;
  const rows = state.history.length ? state.history : [{ best: state.best.unit }];
  const n = Math.max(rows.length - 1, 1);
  const x = (i) => pad + (i / n) * (W - 2 * pad);
  const y = (u) => H - pad - u * (H - 2 * pad);
  for (const u of [0, 0.5, 1]) {
    const line = document.createElementNS(ns, "line");
    line.setAttribute("x1", pad); line.setAttribute("x2", W - pad);
    line.setAttribute("y1", y(u)); line.setAttribute("y2", y(u));
    line.setAttribute("stroke", "#ddd");
    svg.appendChild(line);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 2); label.setAttribute("y", y(u) + 4);
    label.setAttribute("font-size", "10");
    label.textContent = `${u * 100}%`;
    svg.appendChild(label);
  }
  state.knobs.forEach((knob, k) => {
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("points", rows.map((r, i) => `${x(i)},${y(r.best[k])}`).join(" "));
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", COLORS[k % COLORS.length]);
    path.setAttribute("stroke-width", "2");
    svg.appendChild(path);
  });
  rows.forEach((r, i) => {
    if (!r.outcome) return;
    const mark = document.createElementNS(ns, "text");
    mark.setAttribute("x", x(i)); mark.setAttribute("y", H - 6);
    mark.setAttribute("font-size", "10"); mark.setAttribute("text-anchor", "middle");
    mark.textContent = r.outcome === "both_bad" ? "×" : r.outcome.toUpperCase();
    svg.appendChild(mark);
  });
  const legend = $("legend");
  legend.replaceChildren();
  state.knobs.forEach((knob, k) => {
    const item = document.createElement("span");
    item.style.color = COLORS[k % COLORS.length];
    item.textContent = "■ " + knob.name;
    legend.appendChild(item);
  });
}

async function play(side) {
  if (!state) return;
  const audio = $("audio-" + side);
  const box = $("cand-" + side);
  document.querySelectorAll(".candidate").forEach((el) => el.classList.remove("playing"));
  box.classList.add("playing");
  for (const other of ["a", "b", "best"]) if (other !== side) $("audio-" + other).pause();
  try {
    if (state.device) {
      // The synth plays in the room; the page gets the fresh take to replay.
      setStatus(`Playing ${side.toUpperCase()} on the synth…`);
      await api("POST", `/api/sessions/${sessionId}/play`,
                { candidate: side === "best" ? "best" : `${state.pair.id}-${side}` });
      audio.src = (side === "best" ? state.best.audio : state.pair[side].audio) + "?t=" + Date.now();
      setStatus("");
    } else {
      if (side === "best") audio.src = state.best.audio + "?v=" + state.votes;
      audio.currentTime = 0;
      await audio.play();
    }
  } catch (err) {
    setStatus(`Could not play ${side.toUpperCase()}: ${err.message}`, true);
  }
}

async function act(path, body, done) {
  if (busy || !state) return;
  busy = true;
  try {
    show(await api("POST", `/api/sessions/${sessionId}/${path}`, body));
    setStatus(done);
  } catch (err) {
    if (err.status === 409) {
      // Another tab got there first: show what is current now.
      await reload();
      setStatus(`Not counted: ${err.message}`, true);
    } else {
      setStatus(err.message, true);
    }
  } finally {
    busy = false;
  }
}

const NAMES = { a: "A is better", b: "B is better", both_bad: "Both bad" };
const vote = (choice) => act("vote", { pair: state.pair.id, choice }, `Voted: ${NAMES[choice]}`);
const undo = () => act("undo", { pair: state.pair.id }, "Took back the last vote");

async function reload() {
  show(await api("GET", `/api/sessions/${sessionId}`));
}

function onKey(event) {
  if (event.target.closest && event.target.closest("input, textarea, select")) return;
  const key = event.key;
  if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") {
    event.preventDefault(); undo(); return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const actions = {
    "1": () => play("a"), a: () => play("a"), "2": () => play("b"), b: () => play("b"),
    ArrowLeft: () => vote("a"), j: () => vote("a"),
    ArrowRight: () => vote("b"), k: () => vote("b"),
    x: () => vote("both_bad"), u: () => undo(),
  };
  const handler = actions[key];
  if (handler) { event.preventDefault(); handler(); }
}

async function start() {
  $("play-a").addEventListener("click", () => play("a"));
  $("play-b").addEventListener("click", () => play("b"));
  $("play-best").addEventListener("click", () => play("best"));
  $("vote-a").addEventListener("click", () => vote("a"));
  $("vote-b").addEventListener("click", () => vote("b"));
  $("vote-both").addEventListener("click", () => vote("both_bad"));
  $("undo").addEventListener("click", () => undo());
  document.addEventListener("keydown", onKey);
  const params = new URLSearchParams(location.search);
  sessionId = params.get("session");
  try {
    if (sessionId) {
      await reload();
    } else {
      const created = await api("POST", "/api/sessions", {});
      sessionId = created.session;
      history.replaceState(null, "", `?session=${sessionId}`);
      show(created);
    }
    document.body.dataset.ready = "1";
  } catch (err) {
    setStatus(`Cannot open the session: ${err.message}`, true);
  }
}

start();
