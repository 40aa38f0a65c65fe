// The browser phone (/phone): a keypad and a speaker for a call simulated on the server.
// The server runs the call against the line's own webhooks and answers with the whole call so
// far; this page plays the prompts it has not played yet, in order, and shows their text.
"use strict";

(function () {
  const api = document.body.dataset.api;
  const $ = (id) => document.getElementById(id);
  const audio = $("audio");
  const keyButtons = Array.from(document.querySelectorAll(".key"));

  const call = {
    id: null,        // the server's id for the call in progress
    waiting: null,   // the Gather waiting for keys: {numDigits, finishOnKey, timeout, action}
    active: false,
    busy: false,     // a request is on its way
    typed: "",       // keys pressed and not yet sent
    heard: 0,        // prompts already queued for playing
  };
  const player = { queue: [], current: null, turn: 0 };
  let prompts = [];  // every prompt of the call, in the order heard: {prompt, row}

  // --- talking to the server -----------------------------------------------------------------

  async function post(path, body) {
    const response = await fetch(api + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      throw new Error((data && data.error) || ("HTTP " + response.status));
    }
    return data;
  }

  async function request(path, body) {
    call.busy = true;
    showStatus();
    try {
      const data = await post(path, body);
      call.id = data.call;
      update(data);
    } catch (error) {
      fail(error.message);
    } finally {
      call.busy = false;
      showStatus();
      sendIfComplete();
    }
  }

  function startCall() {
    if (call.active) return;
    stopPlaying();
    prompts = [];
    Object.assign(call, { id: null, waiting: null, active: true, typed: "", heard: 0 });
    $("log").replaceChildren();
    $("callbacks").replaceChildren();
    $("now").replaceChildren();
    showTyped();
    enable();
    request("/start");
  }

  function hangUp() {
    if (!call.active || !call.id) return;
    stopPlaying();
    call.waiting = null;
    request("/" + encodeURIComponent(call.id) + "/hangup");
  }

  function send(keys) {
    call.waiting = null;
    call.typed = "";
    showTyped();
    request("/" + encodeURIComponent(call.id) + "/press", { keys: keys || null });
  }

  function fail(message) {
    call.active = false;
    call.waiting = null;
    enable();
    $("status").textContent = "Error: " + message;
  }

  // --- keys ----------------------------------------------------------------------------------

  function pressKey(key) {
    if (!call.active) return;
    call.typed += key;
    showTyped();
    flash(key);
    sendIfComplete();
  }

  // Send the typed keys once they answer the Gather as Twilio counts them: numDigits keys, or
  // the finishOnKey. Keys typed while a request is on its way wait for the next Gather.
  function sendIfComplete() {
    const gather = call.waiting;
    if (!call.active || call.busy || !gather || !call.typed) return;
    let digits = 0;
    for (const key of call.typed) {
      const finished = gather.finishOnKey && gather.finishOnKey.includes(key);
      if (!finished) digits += 1;
      if (finished || (gather.numDigits && digits >= gather.numDigits)) {
        stopPlaying();  // a key stops the prompts, as on a real call
        send(call.typed);
        return;
      }
    }
  }

  // The caller waits: Twilio's Gather times out with whatever was typed (maybe nothing).
  function wait() {
    if (!call.active || call.busy || !call.waiting) return;
    stopPlaying();
    send(call.typed);
  }

  function flash(key) {
    const button = keyButtons.find((b) => b.dataset.key === key);
    if (!button) return;
    button.classList.add("pressed");
    setTimeout(() => button.classList.remove("pressed"), 150);
  }

  // --- showing the call ----------------------------------------------------------------------

  function update(data) {
    call.waiting = data.waiting;
    if (data.ended) {
      call.active = false;
      call.waiting = null;
    }
    prompts = [];
    const log = $("log");
    log.replaceChildren(...data.steps.map(stepItem));
    $("callbacks").replaceChildren(...data.callbacks.map(callbackItem),
      ...data.errors.map((e) => el("li", "error", e)));
    for (let i = call.heard; i < prompts.length; i += 1) player.queue.push(i);
    call.heard = prompts.length;
    markCurrent();
    log.lastElementChild && log.lastElementChild.scrollIntoView({ block: "nearest" });
    enable();
    if (data.ended) showEnd(data);
    if (player.current === null) playNext();
  }

  function stepItem(step) {
    const item = el("li", "step");
    const head = el("div", "step-head");
    head.append(el("span", "method", step.method), " ", el("code", "url", step.url));
    if (step.digits !== null && step.digits !== undefined) {
      head.append(" ", el("span", "digits", "Digits=" + step.digits));
    }
    head.append(" ", el("span", step.status === 200 ? "http ok" : "http bad",
      String(step.status)));
    item.append(head);
    const list = el("ol", "prompts");
    for (const prompt of step.prompts) {
      const row = promptItem(prompt);
      prompts.push({ prompt, row });
      list.append(row);
    }
    item.append(list);
    for (const input of step.inputs) {
      item.append(el("p", "input", input.keys === null ? "No key (the caller waited)"
        : "Keys pressed: " + (input.keys || "(none)")));
    }
    if (step.error) item.append(el("p", "error", step.error));
    return item;
  }

  function promptItem(prompt) {
    const row = el("li", "prompt " + prompt.kind);
    if (prompt.kind === "pause") {
      row.append(el("span", "kind", "pause " + prompt.seconds + " s"));
      return row;
    }
    if (prompt.kind === "play" && prompt.url) {
      const again = el("button", "again", "▶");
      again.type = "button";
      again.title = "Play this prompt again";
      again.addEventListener("click", () => { stopPlaying(); playUrl(prompt.url); });
      row.append(again);
    } else {
      const kind = el("span", "kind", prompt.kind === "say" ? "no audio" : "digits");
      if (prompt.kind === "say") kind.title = "Not rendered: Twilio would speak this text";
      row.append(kind);
    }
    const text = el("span", "text", prompt.text || "(audio without a manifest entry)");
    if (prompt.lang) text.lang = prompt.lang;
    row.append(text);
    if (prompt.url) {
      const link = el("a", "file", prompt.key ? prompt.key + " [" + prompt.lang + "]"
        : prompt.url.split("/").pop());
      link.href = prompt.url;
      link.target = "_blank";
      row.append(link);
    }
    return row;
  }

  function callbackItem(callback) {
    return el("li", callback.status >= 200 && callback.status < 300 ? "callback" : "error",
      callback.kind + " callback POST " + callback.url + " " + (callback.callStatus || "")
      + " [" + callback.status + "]");
  }

  function showEnd(data) {
    const how = { hangup: "The line hung up.", caller: "You hung up.",
      end: "The call ended.", error: "The call failed (see the log)." };
    $("status").textContent = (how[data.endedBy] || "The call ended.")
      + " " + data.seconds + " s simulated.";
  }

  function showStatus() {
    const status = $("status");
    if (!call.active) return;
    const gather = call.waiting;
    if (call.busy) status.textContent = "…";
    else if (!gather) status.textContent = "Listening.";
    else if (gather.numDigits === 1) status.textContent = "Press a key.";
    else if (gather.numDigits) status.textContent = "Key in " + gather.numDigits + " digits.";
    else status.textContent = "Key in digits, then " + (gather.finishOnKey || "wait") + ".";
  }

  function showTyped() {
    $("typed").textContent = call.typed;
  }

  function enable() {
    $("call").disabled = call.active;
    $("hangup").disabled = !call.active;
    $("wait").disabled = !call.active;
    for (const button of keyButtons) button.disabled = !call.active;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- playing -------------------------------------------------------------------------------

  // Prompts play one after another, by their position in the call (stable across redraws); a
  // prompt without audio (a Say) shows its text for a moment.
  function playNext() {
    const turn = player.turn;
    player.current = player.queue.length ? player.queue.shift() : null;
    markCurrent();
    if (player.current === null) return;
    const prompt = prompts[player.current].prompt;
    const now = $("now");
    now.textContent = prompt.text || "";
    now.lang = prompt.lang || "";
    if (prompt.kind === "play" && prompt.url) {
      playUrl(prompt.url);
    } else {
      const ms = prompt.kind === "pause" ? prompt.seconds * 1000
        : Math.min(4000, 600 + 40 * (prompt.text || "").length);
      setTimeout(() => { if (turn === player.turn) playNext(); }, ms);
    }
  }

  function playUrl(url) {
    const turn = player.turn;
    const index = player.current;
    audio.src = url;
    const playing = audio.play();
    if (playing) {
      playing.catch(() => {
        // no sound device, or autoplay refused: the text is shown, move on
        setTimeout(() => {
          if (turn === player.turn && index !== null && player.current === index) playNext();
        }, 1500);
      });
    }
  }

  function stopPlaying() {
    player.turn += 1;
    player.queue = [];
    player.current = null;
    audio.pause();
    markCurrent();
  }

  function markCurrent() {
    prompts.forEach(({ row }, index) => row.classList.toggle("playing", index === player.current));
  }

  audio.addEventListener("ended", () => { if (player.current !== null) playNext(); });
  audio.addEventListener("error", () => {
    if (player.current === null) return;
    prompts[player.current].row.classList.add("broken");
    playNext();
  });

  // --- wiring --------------------------------------------------------------------------------

  for (const button of keyButtons) {
    button.addEventListener("click", () => pressKey(button.dataset.key));
  }
  $("call").addEventListener("click", startCall);
  $("hangup").addEventListener("click", hangUp);
  $("wait").addEventListener("click", wait);
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    if ("0123456789*#".includes(event.key) && event.key.length === 1) {
      pressKey(event.key);
    } else if (event.key === "Enter" && call.active && !event.target.closest("button")) {
      wait();
    } else if (event.key === "Escape") {
      hangUp();
    } else {
      return;
    }
    event.preventDefault();
  });
})();
