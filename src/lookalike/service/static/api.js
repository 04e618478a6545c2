// Talking to the server: JSON in and out, the bearer token when the server wants one, and
// images by file id (an <img> cannot send a header, so with a token they come as blobs).

const TOKEN_KEY = "lookalike-token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// A link printed by `lookalike serve` carries the token after '#' (never sent to the server,
// so never in a log): keep it for this tab and take it out of the address bar.
const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromLink) {
  sessionStorage.setItem(TOKEN_KEY, fromLink);
  history.replaceState(null, "", location.pathname + location.search);
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const out = { ...extra };
  if (token()) out.Authorization = `Bearer ${token()}`;
  return out;
}

// FastAPI's 422 detail is a list of {loc, msg}; ours is a sentence.
function reason(detail, fallback) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
  }
  return fallback;
}

export async function api(path, { method = "GET", json, form } = {}) {
  const init = { method, headers: headers() };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form;
  }
  const reply = await fetch(path, init);
  if (reply.status === 401 && (await askToken())) return api(path, { method, json, form });
  if (!reply.ok) {
    let detail = reply.statusText;
    try {
      detail = reason((await reply.json()).detail, detail);
    } catch {
      /* not JSON: keep the status text */
    }
    throw new ApiError(reply.status, `${reply.status}: ${detail}`);
  }
  return reply.json();
}

let asking = null; // the open question, shared by the requests refused meanwhile

// Ask for the token in the page's dialog; resolves to whether one was given.
function askToken() {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const input = dialog.querySelector("input");
  input.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  asking = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const given = dialog.returnValue === "ok" && input.value.trim();
      if (given) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      asking = null;
      resolve(Boolean(given));
    }, { once: true });
  });
  return asking;
}

// Open file `id`'s bytes in a new tab (with a token, through a blob: a link cannot send it).
export function openFile(event, id) {
  if (!token()) return;
  event.preventDefault();
  imageUrl(id, "content").then((url) => window.open(url, "_blank"), () => {});
}

const blobs = new Map(); // url -> object URL, while a token is in use
const MAX_BLOBS = 400;

// The URL to show file `id`'s thumbnail or content from ("thumbnail" or "content").
export async function imageUrl(id, kind = "thumbnail") {
  const url = `files/${id}/${kind}`;
  if (!token()) return url;
  if (blobs.has(url)) return blobs.get(url);
  const reply = await fetch(url, { headers: headers() });
  if (!reply.ok) throw new ApiError(reply.status, reply.statusText);
  const object = URL.createObjectURL(await reply.blob());
  if (blobs.size >= MAX_BLOBS) {
    const [oldest, value] = blobs.entries().next().value;
    URL.revokeObjectURL(value);
    blobs.delete(oldest);
  }
  blobs.set(url, object);
  return object;
}

// Point `img` at file `id`; a file that cannot be shown gets the "missing" look.
export function showImage(img, id, kind = "thumbnail") {
  img.classList.remove("missing");
  img.addEventListener("error", () => img.classList.add("missing"), { once: true });
  imageUrl(id, kind).then((url) => { img.src = url; }, () => img.classList.add("missing"));
  return img;
}
