// Progressive touches; every page works without this file.
"use strict";
document.addEventListener("submit", (event) => {
  // A form marked data-once (the refund) is sent once: the button is disabled on the first
  // submit. The server's idempotency key makes a second submit harmless anyway.
  const form = event.target;
  if (!form.hasAttribute("data-once")) return;
  if (form.dataset.sent === "true") { event.preventDefault(); return; }
  form.dataset.sent = "true";
  for (const b of form.querySelectorAll("button[type=submit]")) {
    b.disabled = true;
    b.textContent = "Sending…";
  }
});
