// The case page's player: when the recording cannot be played, say why on the page (the
// app's refusal, in the page's language) instead of leaving a silent, greyed-out player.
document.addEventListener("DOMContentLoaded", () => {
  for (const audio of document.querySelectorAll("audio[data-cannot]")) {
    audio.addEventListener("error", async () => {
      const player = audio.closest(".player");
      const box = player.parentElement.querySelector(".player-problem");
      let reason = "";
      try {
        const answer = await fetch(audio.currentSrc || audio.src, {credentials: "same-origin"});
        const page = new DOMParser().parseFromString(await answer.text(), "text/html");
        reason = (page.querySelector(".reason") || {}).textContent || answer.statusText;
      } catch (error) {
        reason = String(error);
      }
      box.textContent = `${audio.dataset.cannot} ${reason.trim()}`;
      box.hidden = false;
      player.hidden = true;
    });
  }
});

// The case page's reply recorder: record a reply in the browser (MediaRecorder), hear it,
// and send it as the form's audio file (the server converts it for the telephone).
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector(".reply-form .recorder");
  if (!box || !window.MediaRecorder || !navigator.mediaDevices) return;
  const start = box.querySelector(".record-start");
  const stop = box.querySelector(".record-stop");
  let preview = null;  // made once something is recorded (the page's player stays the only one)
  const state = box.querySelector(".record-state");
  const input = document.querySelector("#reply-audio");
  let recorder = null;
  let chunks = [];
  box.hidden = false;
  start.addEventListener("click", async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({audio: true});
    } catch (error) {
      state.textContent = state.dataset.denied;
      return;
    }
    chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop());
      const type = recorder.mimeType || "audio/webm";
      const blob = new Blob(chunks, {type});
      const file = new File([blob], type.includes("ogg") ? "reply.ogg" : "reply.webm", {type});
      const files = new DataTransfer();
      files.items.add(file);
      input.files = files.files;
      if (!preview) {
        preview = document.createElement("audio");
        preview.className = "record-preview";
        preview.controls = true;
        state.before(preview);
      }
      preview.src = URL.createObjectURL(blob);
      state.textContent = state.dataset.ready;
      box.dataset.recorded = String(file.size);
    });
    recorder.start();
    state.textContent = state.dataset.recording;
    start.disabled = true;
    stop.disabled = false;
  });
  stop.addEventListener("click", () => {
    if (recorder && recorder.state !== "inactive") recorder.stop();
    start.disabled = false;
    stop.disabled = true;
  });
});
