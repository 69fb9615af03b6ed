// Account page: own password and two-factor login; for admins also users, tokens and the audit log.
import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["viewer", "operator", "admin"];
const BASE = new Set(["time", "event", "user", "address", "outcome"]);

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
  return td;
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

async function report(box, work) {
  box.textContent = "";
  try {
    const text = await work();
    box.textContent = text || "Done.";
    box.classList.remove("form-error");
  } catch (err) {
    box.textContent = err.message;
    box.classList.add("form-error");
  }
}

let me = null;

async function loadMe() {
  me = await api("GET", "/api/auth/me");
  $("whoami").textContent = `Signed in as ${me.user} (${me.role}) via ${me.via}.`;
  $("enrol-notice").hidden = !me.enrolment_needed;
  $("totp-state").textContent = me.totp
    ? "Two-factor login is on."
    : me.totp_required
      ? "Two-factor login is required for your account and not set up yet."
      : "Two-factor login is off.";
  $("totp-setup").textContent = me.totp ? "Set up again (new phone)" : "Set up two-factor login";
  $("totp-off").hidden = !me.totp || me.totp_required;
  $("admin").hidden = me.role !== "admin";
  if (me.role === "admin") await Promise.all([loadUsers(), loadTokens(), loadAudit()]);
}

$("pw-form").addEventListener("submit", (event) => {
  event.preventDefault();
  report($("pw-result"), async () => {
    if ($("pw-new").value !== $("pw-new2").value) throw new Error("The new passwords differ.");
    await api("POST", "/api/account/password", {
      password: $("pw-old").value,
      new_password: $("pw-new").value,
    });
    window.location.assign("/login"); // the password change ended this session too
    return "Password changed: sign in again.";
  });
});

$("totp-setup").addEventListener("click", () =>
  report($("totp-result"), async () => {
    const setup = await api("POST", "/api/account/totp/setup");
    $("totp-qr").innerHTML = setup.svg; // server-rendered SVG (segno), no script inside
    $("totp-secret").textContent = setup.secret;
    $("totp-enrol").hidden = false;
    $("totp-code").focus();
    return "Scan the code, then enter the 6 digits.";
  }),
);

$("totp-form").addEventListener("submit", (event) => {
  event.preventDefault();
  report($("totp-result"), async () => {
    const answer = await api("POST", "/api/account/totp/enable", { code: $("totp-code").value });
    $("totp-enrol").hidden = true;
    const list = $("totp-code-list");
    list.replaceChildren(
      ...answer.recovery_codes.map((c) => {
        const li = document.createElement("li");
        li.textContent = c;
        return li;
      }),
    );
    $("totp-codes").hidden = false;
    await loadMe();
    return "Two-factor login is on.";
  });
});

$("totp-off").addEventListener("submit", (event) => {
  event.preventDefault();
  report($("totp-result"), async () => {
    await api("POST", "/api/account/totp/disable", { password: $("totp-off-pw").value });
    await loadMe();
    return "Two-factor login is off.";
  });
});

// ---------------------------------------------------------------- admin

async function loadUsers() {
  const { users } = await api("GET", "/api/users");
  const body = $("users");
  body.replaceChildren();
  for (const u of users) {
    const row = document.createElement("tr");
    row.dataset.user = u.name;
    cell(row, u.name);
    const roleCell = cell(row, "");
    const select = document.createElement("select");
    select.setAttribute("aria-label", `Role of ${u.name}`);
    for (const r of ROLES) select.add(new Option(r, r, false, r === u.role));
    select.addEventListener("change", () =>
      report($("users-result"), async () => {
        await api("PATCH", `/api/users/${encodeURIComponent(u.name)}`, { role: select.value });
        await loadUsers();
        return `${u.name} is now ${select.value}.`;
      }),
    );
    roleCell.append(select);
    const portsCell = cell(row, "");
    const ports = document.createElement("input");
    ports.size = 8;
    ports.value = u.ports ? u.ports.join(",") : "all";
    ports.setAttribute("aria-label", `Switch ports of ${u.name}`);
    ports.addEventListener("change", () =>
      report($("users-result"), async () => {
        const text = ports.value.trim();
        const value =
          text === "" || text === "all" ? null : text.split(",").map((p) => Number(p.trim()));
        await api("PATCH", `/api/users/${encodeURIComponent(u.name)}`, { ports: value });
        return `Ports of ${u.name} changed.`;
      }),
    );
    portsCell.append(ports);
    const totpCell = cell(row, u.totp ? `on (${u.recovery_left} codes) ` : "off ");
    const require = document.createElement("input");
    require.type = "checkbox";
    require.checked = u.totp_required;
    require.title = "Required";
    require.setAttribute("aria-label", `Require two-factor login for ${u.name}`);
    require.addEventListener("change", () =>
      report($("users-result"), async () => {
        await api("PATCH", `/api/users/${encodeURIComponent(u.name)}`, {
          totp_required: require.checked,
        });
        return `Two-factor login ${require.checked ? "required" : "optional"} for ${u.name}.`;
      }),
    );
    totpCell.append(require);
    if (u.totp) {
      totpCell.append(
        button("Reset", () =>
          report($("users-result"), async () => {
            await api("DELETE", `/api/users/${encodeURIComponent(u.name)}/totp`);
            await loadUsers();
            return `Two-factor login of ${u.name} reset.`;
          }),
        ),
      );
    }
    cell(row, "").append(
      button("Remove", () =>
        report($("users-result"), async () => {
          if (!window.confirm(`Remove ${u.name}? Their sessions and tokens end.`)) return "";
          await api("DELETE", `/api/users/${encodeURIComponent(u.name)}`);
          await loadUsers();
          return `${u.name} removed.`;
        }),
      ),
    );
    body.append(row);
  }
}

$("user-add").addEventListener("submit", (event) => {
  event.preventDefault();
  report($("users-result"), async () => {
    const name = $("ua-name").value.trim();
    await api("POST", "/api/users", {
      name,
      password: $("ua-pw").value,
      role: $("ua-role").value,
    });
    $("ua-name").value = "";
    $("ua-pw").value = "";
    await loadUsers();
    return `Added ${name}.`;
  });
});

async function loadTokens() {
  const { tokens } = await api("GET", "/api/tokens");
  const body = $("tokens");
  body.replaceChildren();
  for (const t of tokens) {
    const row = document.createElement("tr");
    cell(row, t.name);
    cell(row, t.user);
    cell(row, t.role || "(user's)");
    cell(row, t.created);
    cell(row, "").append(
      button("Revoke", () =>
        report($("token-result"), async () => {
          await api("DELETE", `/api/tokens/${encodeURIComponent(t.id)}`);
          await loadTokens();
          return `Token ${t.name} revoked.`;
        }),
      ),
    );
    body.append(row);
  }
}

$("token-add").addEventListener("submit", (event) => {
  event.preventDefault();
  report($("token-result"), async () => {
    const body = { name: $("ta-name").value.trim() };
    if ($("ta-user").value.trim()) body.user = $("ta-user").value.trim();
    if ($("ta-role").value) body.role = $("ta-role").value;
    const answer = await api("POST", "/api/tokens", body);
    await loadTokens();
    return `Token (shown once): ${answer.token}`;
  });
});

async function loadAudit() {
  const filter = $("audit-filter").value.trim();
  const query = filter ? `&event=${encodeURIComponent(filter)}` : "";
  const { entries } = await api("GET", `/api/audit?limit=200${query}`);
  const body = $("audit");
  body.replaceChildren();
  for (const e of entries) {
    const row = document.createElement("tr");
    row.className = `outcome-${e.outcome}`;
    for (const key of ["time", "event", "user", "address", "outcome"]) cell(row, e[key] ?? "");
    const details = Object.entries(e)
      .filter(([k]) => !BASE.has(k))
      .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
    cell(row, details.join(" "));
    body.append(row);
  }
}

$("audit-refresh").addEventListener("click", () => loadAudit());

loadMe().catch((err) => {
  $("whoami").textContent = `Cannot load the account: ${err.message}`;
});
