/*
 * The answer queue: an answer is never lost.
 *
 * Before an answer is sent it is written to localStorage with its client_key (a UUID made
 * once per answer); it is re-sent with the same key after a network error (exponential
 * backoff, or at once when the browser is online again) and after a reload, and removed
 * only when the server acknowledged or refused it. The server records one judgment per key
 * and per presentation, so a retry or a double submit is harmless.
 *
 * This module owns the stored answer and the "an answer is being sent" flag; it knows the
 * two API URLs but nothing of the page: it reports connection trouble through ``say``.
 */

const MAX_BACKOFF_MS = 15000;

/** Milliseconds to wait before try ``attempt + 1`` (also used for the image reloads). */
export function backoffMs(attempt) {
  return Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
}

/** A fresh client_key: one per answer, kept across retries and reloads. */
export function newClientKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues works on plain http too.
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
}

class RetryableError extends Error {}

const sleep = (ms) => new Promise((resolve) => window.setTimeout(resolve, ms));

function onlineAgain() {
  return new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
}

/**
 * The queue for one study.
 *
 * ``say(text, isWarning)`` shows connection trouble (and clears it, with "", once a retry
 * got through); ``csrf`` is the token the page was rendered with, used when the cookie is
 * not readable.
 */
export function createAnswerQueue({ studyId, stateUrl, answersUrl, csrf, say }) {
  const pendingKey = "dermgan.pending." + studyId;
  let sending = false; // an answer is being sent: no second submit

  const storage = {
    load() {
      try {
        const raw = window.localStorage.getItem(pendingKey);
        return raw ? JSON.parse(raw) : null;
      } catch (e) {
        return null;
      }
    },
    save(answer) {
      try {
        window.localStorage.setItem(pendingKey, JSON.stringify(answer));
      } catch (e) {
        /* private mode: the in-memory copy still retries until acknowledged */
      }
    },
    clear() {
      try {
        window.localStorage.removeItem(pendingKey);
      } catch (e) {
        /* nothing stored */
      }
    },
  };

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : csrf;
  }

  /** One request; throws RetryableError for network trouble, returns {status, data} otherwise. */
  async function request(method, url, body) {
    const headers = { Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = csrfToken();
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await window.fetch(url, init);
    } catch (e) {
      throw new RetryableError("network error");
    }
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      throw new RetryableError("server busy (" + response.status + ")");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      if (response.ok) throw new RetryableError("incomplete response");
    }
    return { status: response.status, data: data };
  }

  /** Repeat a request until the server answers (any non-retryable status). */
  async function requestWithRetry(method, url, body, what) {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await request(method, url, body);
        if (attempt > 0) say("");
        return result;
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        const delay = backoffMs(attempt) * (0.75 + Math.random() * 0.5);
        say(
          "Connection problem (" + e.message + "): " + what + " again in " + Math.ceil(delay / 1000) +
            " s. Nothing is lost.",
          true
        );
        await Promise.race([sleep(delay), onlineAgain()]);
      }
    }
  }

  return {
    /** True while an answer is on its way. */
    isSending: () => sending,

    /** The answer stored before a reload or a crash, or null. */
    pending() {
      const answer = storage.load();
      return answer && answer.token && answer.client_key ? answer : null;
    },

    /** Stores ``answer`` before it is sent, so a reload cannot lose it. */
    keep(answer) {
      storage.save(answer);
    },

    /**
     * Sends ``answer`` until the server answers, and returns {status, data}. The stored copy
     * is dropped once the server acknowledged or refused it, and kept on 401/403: those refuse
     * who sends it (session ended, consent missing), not what it says; and on 423: the study
     * is paused, and the answer is sent when the rater comes back after it resumed.
     */
    async send(answer) {
      sending = true;
      let result;
      try {
        result = await requestWithRetry("POST", answersUrl, answer, "saving your answer");
      } finally {
        sending = false;
      }
      if (result.status !== 401 && result.status !== 403 && result.status !== 423) storage.clear();
      return result;
    },

    /** GET state, retried until the server answers: {status, data}. */
    fetchState: () => requestWithRetry("GET", stateUrl, undefined, "loading"),
  };
}
