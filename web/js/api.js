// Small JSON helpers for the REST API. A 401 means the session is gone: go back to /login.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function goToLogin() {
  window.location.assign("/login");
}

/** Call the API; resolves to the parsed JSON body, rejects with ApiError (status 0 = network). */
export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "cannot reach the appliance", null);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) {
    goToLogin();
    throw new ApiError(401, "signed out", data);
  }
  if (!response.ok) {
    const message = (data && data.error) || `HTTP ${response.status}`;
    throw new ApiError(response.status, message, data);
  }
  return data;
}
