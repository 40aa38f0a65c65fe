// The voice studio: record a prompt with the browser's microphone (MediaRecorder) and send
// it to the same address as the upload form; the page then shows what callers now hear.
// Every word on the buttons comes from the page (data-*), in the page's language.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.record[data-url]")) {
    let recorder = null;
    let chunks = [];
    const status = button.closest(".actions").querySelector(".record-status");
    const say = (text) => { status.textContent = text; status.hidden = !text; };

    button.addEventListener("click", async () => {
      if (recorder && recorder.state === "recording") {
        recorder.stop();
        return;
      }
      try {
        const stream = await navigator.mediaDevices.getUserMedia({audio: true});
        recorder = new MediaRecorder(stream);
      } catch (error) {
        say(`${button.dataset.refused} ${error}`);
        return;
      }
      chunks = [];
      recorder.addEventListener("dataavailable", (event) => {
        if (event.data.size) chunks.push(event.data);
      });
      recorder.addEventListener("stop", async () => {
        recorder.stream.getTracks().forEach((track) => track.stop());
        button.textContent = button.dataset.start;
        button.disabled = true;
        say(button.dataset.sending);
        const type = recorder.mimeType || "audio/webm";
        const body = new FormData();
        body.append("csrf", button.dataset.csrf);
        body.append("via", "browser");
        body.append("audio", new Blob(chunks, {type}),
                    type.includes("ogg") ? "recording.ogg" : "recording.webm");
        for (const name of ["show", "q", "page"]) {
          const field = button.closest(".actions").querySelector(`input[name=${name}]`);
          if (field) body.append(name, field.value);
        }
        try {
          const answer = await fetch(button.dataset.url, {
            method: "POST", body, credentials: "same-origin",
            headers: {"Accept": "application/json"}});
          if (answer.ok) {
            window.location.assign((await answer.json()).next);
            return;
          }
          const page = new DOMParser().parseFromString(await answer.text(), "text/html");
          say(`${button.dataset.refused} ${((page.querySelector(".reason") || {}).textContent
                                            || answer.statusText).trim()}`);
        } catch (error) {
          say(`${button.dataset.refused} ${error}`);
        }
        button.disabled = false;
      });
      recorder.start();
      button.textContent = button.dataset.stop;
      say("");
    });
  }
});
