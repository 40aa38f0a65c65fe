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
