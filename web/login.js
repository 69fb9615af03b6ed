// Login page: POST the form as JSON, go to the console on success, explain failures plainly.
const form = document.getElementById("login-form");
const userInput = document.getElementById("user");
const passwordInput = document.getElementById("password");
const errorBox = document.getElementById("login-error");
const submit = document.getElementById("login-submit");
const codeRow = document.getElementById("code-row");
const codeInput = document.getElementById("code");

let lockTimer = null;

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

// After a 429 keep the button disabled and count down, so the user sees when to retry.
function lockFor(seconds) {
  clearInterval(lockTimer);
  let left = Math.max(1, Math.ceil(seconds));
  submit.disabled = true;
  const tick = () => {
    if (left <= 0) {
      clearInterval(lockTimer);
      submit.disabled = false;
      clearError();
      passwordInput.focus();
      return;
    }
    showError(`Too many attempts, try again in ${left} s.`);
    left -= 1;
  };
  tick();
  lockTimer = setInterval(tick, 1000);
}

async function retryAfter(response) {
  let seconds = Number(response.headers.get("Retry-After"));
  try {
    const body = await response.json();
    if (typeof body.retry_after === "number") seconds = body.retry_after;
  } catch {
    // No JSON body: keep the header value.
  }
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 30;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (submit.disabled) return;
  clearError();
  if (!passwordInput.value) {
    showError("Enter the password.");
    passwordInput.focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = "Signing in…";
  let response;
  try {
    response = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({
        user: userInput.value.trim(),
        password: passwordInput.value,
        ...(codeRow.hidden || !codeInput.value.trim() ? {} : { code: codeInput.value.trim() }),
      }),
    });
  } catch {
    showError("Cannot reach the appliance (network error). Check the connection and try again.");
    submit.disabled = false;
    submit.textContent = "Sign in";
    return;
  }
  submit.textContent = "Sign in";
  if (response.ok) {
    let body = {};
    try {
      body = await response.json();
    } catch {
      // no body: go to the console
    }
    // Two-factor login is required and not set up yet: only the Account page is open.
    window.location.assign(body.enrolment_needed ? "/account" : "/");
    return;
  }
  submit.disabled = false;
  if (response.status === 401) {
    let body = {};
    try {
      body = await response.json();
    } catch {
      // no body: a plain wrong password
    }
    if (body.totp_required) {
      // The password was right; this account also needs a code from its authenticator app.
      const asked = !codeRow.hidden && codeInput.value.trim();
      codeRow.hidden = false;
      showError(asked ? "Wrong or already used code." : "Enter the code from your authenticator app.");
      codeInput.value = "";
      codeInput.focus();
      return;
    }
    showError("Wrong user or password.");
    passwordInput.select();
  } else if (response.status === 429) {
    lockFor(await retryAfter(response));
  } else {
    let message = `Sign-in failed (HTTP ${response.status}).`;
    try {
      const body = await response.json();
      if (body.error) message = `Sign-in failed: ${body.error}`;
    } catch {
      // keep the generic message
    }
    showError(message);
  }
});

