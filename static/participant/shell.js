/*
 * The participant page's shell: consent, instructions, the API client (retries, client_id replay),
 * errors, resume, the feedback form, the hand-back, keyboard routing, preloading, the device and window
 * checks and each trial's display geometry. It knows
 * nothing of any protocol: the study's protocol module (loaded after this file) registers itself
 * with psyplatform.registerProtocol(name, module) and draws each trial, as a jsPsych plugin does.
 *
 * A module is an object with two functions:
 *   trial(element, trial, ctx) -> Promise of the answer's fields (e.g. {choice, confidence}):
 *     draws the trial (the API's payload) into `element`, waits for ctx.present(images) before it
 *     accepts input, and resolves when the participant answers.
 *   feedback(element, trial, answer, result, ctx) -> Promise: shows the server's verdict
 *     (result: the reply to the answer, with the protocol's own fields, e.g. which answer was right)
 *     for at least ctx.timing.feedback_ms, with a shape or text cue besides colour, and resolves then;
 *     the Continue button follows. result.correct is null where there is no verdict to show: a study
 *     without feedback on main trials (session.main_feedback false), or a protocol with no right answer.
 * Keys typed into an <input> or <textarea> of the module go to it, not to onKey nor to Continue.
 * ctx gives: timing {lock_ms, feedback_delay_ms, feedback_ms}; present(images) -> Promise, which
 * loads and decodes the trial's <img> elements (retrying each that fails; after the retries the trial
 * screen says so and offers to try again, the promise waiting meanwhile), marks the onset (the first
 * frame in which all are visible), and resolves once the answer lock is over; their rendered sizes go
 * with the answer; onKey(handler) to receive the keys pressed
 * while the trial accepts answers (handler(key, event) returns true when it used the key); sleep(ms).
 * psyplatform.element(tag, className, text) and psyplatform.image(url, className, alt) make the nodes a
 * module draws (an image's URL waits in data-src for ctx.present to load it); psyplatform.grid(node, grid)
 * lays a block out as the payload's grid.
 *
 * The size hint: where the study calibrates the screen's size (the virtual chinrest's card method), the element
 * a module draws into carries the CSS custom property --image-size, the CSS pixels that measure the study's
 * image_size_mm on this screen. A module's stylesheet sizes its unit images (a reference or exemplar cell) by it
 * where it is set, e.g. --cell: var(--image-size, clamp(...)), and its other images in proportion; where the
 * trial then does not fit the window, the shell pauses it and asks for a larger window.
 *
 * While a trial is on screen and the window falls below the study's minimum (or no longer holds a calibrated
 * trial), the shell pauses it: the window message covers it, nothing can be answered, and once the window is
 * large enough again the answer lock starts anew, so that the trial is seen for the whole lock; the response
 * time counts from then. Pauses are recorded as window_pause and window_resume events.
 *
 * Every piece of state (stage, current trial, practice round) comes from the participant API, so
 * a reload, a closed tab or a second device resumes at the first unanswered trial. Enter or Space
 * continues after the feedback.
 */
(function () {
  "use strict";

  var app = document.getElementById("app");
  var API = app.dataset.api.replace(/\/$/, "");
  var STUDY = app.dataset.study;
  // Each recruiter's arrival fields and the URL parameters it puts them in, in the server's order.
  var ARRIVAL_PARAMS = JSON.parse(document.getElementById("arrival-params").textContent);
  var protocols = {};

  var state = {
    session: null, // the last session state from the API
    token: null,
    trial: null, // the trial on screen
    seq: 0, // increments with every trial shown; stale timers compare against it
    mode: "idle", // idle | loading | locked | ready | answering | continue
    onset: 0,
    clickedAt: 0,
    pending: null, // the answer being sent (its client_id is reused on retry)
    answer: null, // the module's answer fields of the trial on screen
    result: null,
    resumed: false,
    onKey: null, // the trial module's key handler while it accepts answers
    images: [], // the <img> elements of the trial on screen, for its geometry
    paused: false, // the window is too small for the trial on screen
    pausedAt: 0,
    pausedFocus: null, // what had the focus when the pause began
  };

  // ---------------------------------------------------------------- helpers

  function $(id) { return document.getElementById(id); }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, Math.max(0, ms)); });
  }

  function nextFrame() {
    return new Promise(function (resolve) { requestAnimationFrame(function () { resolve(); }); });
  }

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; getRandomValues does not.
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  var SCREENS = [
    "loading", "device", "window", "declined", "error", "preview", "consent", "calibration", "instructions", "trial",
    "message", "feedback", "done",
  ];

  function show(name) {
    SCREENS.forEach(function (s) { $("screen-" + s).hidden = s !== name; });
    app.dataset.screen = name;
    if (document.activeElement && document.activeElement !== document.body) {
      document.activeElement.blur();
    }
  }

  // ---------------------------------------------------------------- API

  function ApiError(status, message, retryable) {
    this.status = status;
    this.message = message;
    this.retryable = retryable;
  }

  var STATUS_MESSAGES = {
    400: "The request was not accepted.",
    401: "Your session could not be verified. Please reload the page.",
    403: "Your session could not be verified. Please reload the page.",
    404: "This study was not found. Please check the link you were given.",
    409: "This cannot be done right now.",
    429: "Too many requests. Please wait a moment and try again.",
  };

  // How many times a call waits its turn (a 503 with Retry-After) before the participant is told: minutes.
  var MAX_TURNS_WAITED = 120;

  function request(method, path, body, options) {
    options = options || {};
    var retries = options.retries === undefined ? 3 : options.retries;
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.token) headers.Authorization = "Bearer " + state.token;
    var init = {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      keepalive: !!options.keepalive,
    };
    var attempt = 0;
    var turnsWaited = 0;

    function again(error) {
      if (attempt >= retries) return Promise.reject(error);
      attempt += 1;
      return sleep(400 * Math.pow(2, attempt)).then(go);
    }

    function go() {
      return fetch(API + path, init).then(
        function (res) {
          return res.text().then(function (text) {
            var data = null;
            try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
            if (res.ok) return { status: res.status, data: data };
            var message = (data && typeof data.error === "string" && data.error) ||
              STATUS_MESSAGES[res.status] ||
              "The server had a problem (error " + res.status + ").";
            var retryable = res.status >= 500 || res.status === 429;
            var error = new ApiError(res.status, message, retryable);
            error.data = data;
            var wait = Number(res.headers.get("Retry-After"));
            if (res.status === 503 && wait > 0 && turnsWaited < MAX_TURNS_WAITED) {
              // Others are starting right now: come back when the server asked, spread a little so that
              // the people waiting do not all come back at the same moment. Nothing was done: no retry spent.
              turnsWaited += 1;
              return sleep(wait * 1000 * (1 + Math.random() / 2)).then(go);
            }
            return retryable ? again(error) : Promise.reject(error);
          });
        },
        function () {
          return again(new ApiError(0,
            "The server cannot be reached. Please check your internet connection and try again.", true));
        }
      );
    }
    return go();
  }

  function sessionPath(suffix) {
    return "/sessions/" + encodeURIComponent(state.session.id) + (suffix || "");
  }

  function sendEvent(type, payload, options) {
    return request("POST", sessionPath("/events"), { type: type, payload: payload || {} }, options);
  }

  // ---------------------------------------------------------------- errors

  // What the participant can do about each kind of refusal or error, beside the server's own message.
  var ADVICE = {
    0: ["The connection was lost", "Your answers so far are saved. Check your internet connection, then try again."],
    400: ["This was not accepted", "Please open the exact link you were given; if it keeps happening, return the task."],
    401: ["Your session has expired", "Reload the page: you continue where you left off."],
    403: ["Your session has expired", "Reload the page: you continue where you left off."],
    404: ["This study was not found", "Please check the link you were given; the study may have ended."],
    409: ["This cannot be done now", "Nothing you did was lost. If the study is full or closed, please return the task."],
    429: ["Too many requests", "Please wait a minute, then try again."],
  };

  function showError(error, retry) {
    var message = error && error.message ? error.message : String(error);
    var status = error && error.status;
    var advice = ADVICE[status] || ["The server had a problem", "Your answers so far are saved. Please try again in a moment."];
    $("error-title").textContent = status === 409 && /completed/i.test(message) ? "Thank you" : advice[0];
    $("error-message").textContent = message;
    $("error-advice").textContent = advice[1];
    var retryButton = $("error-retry");
    retryButton.hidden = !(retry && error && error.retryable);
    retryButton.onclick = function () { show("loading"); retry(); };
    $("error-reload").hidden = !(error && (error.status === 401 || error.status === 403));
    show("error");
    if (window.console && error && !error.status) console.error(error);
  }

  // A programming error or anything unexpected still ends on a readable screen.
  function guard(promise, retry) {
    return Promise.resolve(promise).catch(function (error) {
      if (error instanceof ApiError) return showError(error, retry);
      showError(new ApiError(0, "An unexpected error occurred: " + (error && error.message || error), true), retry);
    });
  }

  // ---------------------------------------------------------------- start

  function arrivalPayload() {
    var q = new URLSearchParams(window.location.search);
    var sources = Object.keys(ARRIVAL_PARAMS);
    for (var i = 0; i < sources.length; i++) {
      var fields = ARRIVAL_PARAMS[sources[i]];
      var names = Object.keys(fields);
      if (!names.some(function (name) { return q.has(fields[name]); })) continue;
      var payload = { study: STUDY, source: sources[i] };
      names.forEach(function (name) {
        if (q.get(fields[name]) !== null) payload[name] = q.get(fields[name]);
      });
      return payload;
    }
    return null;
  }

  function start() {
    var payload = arrivalPayload();
    if (!payload) {
      showError(new ApiError(400,
        "This link is incomplete: it does not say who you are. Please open the exact link you were given.", false));
      return;
    }
    if (app.dataset.preview) {
      show("preview");
      return;
    }
    // Refused before any session: phones and tablets, where the study wants a computer.
    if (app.dataset.devices === "desktop" && isPhoneOrTablet()) {
      show("device");
      return;
    }
    windowLargeEnough().then(function () { begin(payload); });
  }

  function isPhoneOrTablet() {
    var ua = navigator.userAgent || "";
    if (/Mobi|Android|iPhone|iPad|iPod|Tablet|Silk|Kindle/i.test(ua)) return true;
    // iPadOS reports a Mac; it has a touch screen that no Mac has.
    if (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1) return true;
    // A touch screen and no mouse or touchpad anywhere.
    return window.matchMedia("(pointer: coarse)").matches && !window.matchMedia("(any-pointer: fine)").matches;
  }

  function windowFits() {
    return window.innerWidth >= +app.dataset.minWidth && window.innerHeight >= +app.dataset.minHeight;
  }

  // The window message's facts: this window's size, and whether it is the images' calibrated size that needs more.
  function describeWindow(imagesTooLarge) {
    $("window-size").textContent = window.innerWidth + " \u00d7 " + window.innerHeight + " pixels";
    $("window-images").hidden = !imagesTooLarge;
  }

  // Resolves once the window is at least the study's minimum size, asking the participant to enlarge it meanwhile.
  function windowLargeEnough() {
    return new Promise(function (resolve) {
      function check() {
        if (!windowFits()) {
          describeWindow(false);
          show("window");
          return;
        }
        window.removeEventListener("resize", check);
        resolve();
      }
      window.addEventListener("resize", check);
      check();
    });
  }

  function begin(payload) {
    show("loading");
    guard(request("POST", "/sessions", payload).then(function (res) {
      state.token = res.data.token;
      state.session = res.data;
      state.resumed = res.status === 200 && res.data.stage === "trials";
      route();
    }).catch(function (error) {
      // A participant who already finished may be handed back again rather than refused.
      var handBack = error && error.data && error.data.hand_back;
      if (handBack) return showDone(handBack, false);
      throw error;
    }), function () { begin(payload); });
  }

  function route() {
    var s = state.session;
    applyImageSize();
    switch (s.stage) {
      case "consent": return showConsent();
      case "instructions": return calibrated(showInstructions);
      case "trials": return calibrated(function () { guard(nextTrial(), route); });
      case "feedback": return showFeedback();
      case "done": return showDone(s.hand_back || {}, false);
      default:
        showError(new ApiError(0, "Unknown stage " + s.stage + ". Please reload the page.", false));
    }
  }

  // ---------------------------------------------------------------- consent

  function showConsent() {
    $("consent-n-main").textContent = String(state.session.trials_per_session);
    show("consent");
    var button = $("consent-agree");
    var decline = $("consent-decline");
    button.disabled = decline.disabled = false;
    button.onclick = function () {
      button.disabled = decline.disabled = true;
      guard(sendEvent("consent").then(function () {
        state.session.stage = "instructions";
        route();
      }), showConsent);
    };
    // Declining deletes the session the page opened: nothing about the participant is kept.
    decline.onclick = function () {
      button.disabled = decline.disabled = true;
      guard(request("POST", sessionPath("/decline")).then(function () {
        state.session = null;
        state.token = null;
        show("declined");
      }), showConsent);
    };
  }

  // ---------------------------------------------------------------- size calibration

  // ISO/IEC 7810 ID-1, the size of bank cards, in millimetres: the virtual chinrest's card method (Li et al. 2020).
  var CARD_MM = [85.6, 53.98];
  var CARD_CORNER_MM = 3.18;
  var NOMINAL_PX_PER_MM = 96 / 25.4; // the CSS pixel's definition: where the outline starts

  // Runs then() once the screen's size is known, where the study calibrates it (after consent, before the
  // instructions; a session calibrated before a reload is not asked again).
  function calibrated(then) {
    var calibration = state.session.calibration;
    if (calibration && calibration.px_per_mm === null) return showCalibration(then);
    then();
  }

  // The size hint the trial modules' stylesheets read: the CSS pixels of the study's millimetres on this screen.
  function applyImageSize() {
    var calibration = state.session && state.session.calibration;
    if (calibration && calibration.px_per_mm) {
      var side = calibration.image_size_mm * calibration.px_per_mm;
      display.style.setProperty("--image-size", side.toFixed(2) + "px");
    } else {
      display.style.removeProperty("--image-size");
    }
  }

  // The outline follows the slider's value, its width in CSS pixels. Sized through the CSSOM: the page's
  // Content-Security-Policy refuses inline style attributes.
  function drawCard() {
    var width = +$("calibration-slider").value;
    var card = $("calibration-card");
    card.style.width = width + "px";
    card.style.height = ((width * CARD_MM[1]) / CARD_MM[0]).toFixed(2) + "px";
    card.style.borderRadius = ((width * CARD_CORNER_MM) / CARD_MM[0]).toFixed(2) + "px";
  }

  // The arrow keys move the slider wherever the focus is (the range input clamps to its bounds).
  function stepCard(pixels) {
    var slider = $("calibration-slider");
    slider.value = String(+slider.value + pixels);
    drawCard();
  }

  function showCalibration(then) {
    var calibration = state.session.calibration;
    var slider = $("calibration-slider");
    var confirm = $("calibration-confirm");
    slider.min = String(Math.ceil(calibration.min_px_per_mm * CARD_MM[0]));
    // The outline must fit the window to be matched.
    slider.max = String(Math.max(+slider.min,
      Math.min(Math.floor(calibration.max_px_per_mm * CARD_MM[0]), window.innerWidth - 48)));
    if (!slider.dataset.shown) slider.value = String(Math.round(NOMINAL_PX_PER_MM * CARD_MM[0]));
    slider.dataset.shown = "1";
    slider.oninput = drawCard;
    drawCard();
    show("calibration");
    confirm.disabled = false;
    confirm.onclick = function () {
      confirm.disabled = true;
      var pxPerMm = Math.round((+slider.value / CARD_MM[0]) * 10000) / 10000;
      guard(request("POST", sessionPath("/calibration"), { px_per_mm: pxPerMm }).then(function (res) {
        calibration.px_per_mm = res.data.px_per_mm;
        applyImageSize();
        then();
      }), function () { showCalibration(then); });
    };
  }

  // ---------------------------------------------------------------- instructions

  var instructionPages = Array.prototype.slice.call(document.querySelectorAll(".instructions-page"));

  function showInstructionPage(number) {
    instructionPages.forEach(function (page) { page.hidden = +page.dataset.page !== number; });
    var last = number === instructionPages.length;
    $("instructions-page-count").textContent = "(" + number + " of " + instructionPages.length + ")";
    $("instructions-back").hidden = number === 1;
    $("instructions-next").hidden = last;
    $("instructions-start").hidden = !last;
    $("instructions-wait").hidden = !last;
    $("instructions-back").onclick = function () { showInstructionPage(number - 1); };
    $("instructions-next").onclick = function () { showInstructionPage(number + 1); };
    window.scrollTo(0, 0);
  }

  function offerFullscreen() {
    var offer = $("fullscreen-offer");
    offer.hidden = !(app.dataset.fullscreen && document.fullscreenEnabled && !document.fullscreenElement);
    $("fullscreen-enter").onclick = function () {
      document.documentElement.requestFullscreen().then(function () { offer.hidden = true; }, function () {});
    };
  }

  function showInstructions() {
    var s = state.session;
    $("instructions-n-practice").textContent = String(s.n_practice_trials);
    $("instructions-n-main").textContent = String(s.trials_per_session);
    showInstructionPage(1);
    offerFullscreen();
    show("instructions");
    var shownAt = performance.now();
    // Best effort: the server times the instructions from this event to instructions_end, so
    // instructions_end waits until this one has been answered, and the countdown runs from then.
    var started = sendEvent("instructions_start", {}).catch(function () {}).then(function () {
      shownAt = performance.now();
    });

    // Where the study enforces it, the button counts down the minimum instruction time, so that nobody
    // fails the instruction-time check by reading fast; otherwise it only measures the participant's time.
    var button = $("instructions-start");
    var wait = $("instructions-wait");
    var label = button.textContent.replace(/ \(.*\)$/, "");
    var minimum = s.enforce_instruction_time ? s.min_instruction_s : 0;
    var ticking = true;
    function tick() {
      if (!ticking) return;
      var left = Math.ceil(minimum - (performance.now() - shownAt) / 1000);
      button.disabled = left > 0;
      button.textContent = left > 0 ? label + " (" + left + " s)" : label;
      wait.textContent = left > 0 ? "Please read the instructions: the practice can start in " + left + " s." : "";
      if (left > 0) setTimeout(tick, 250);
    }
    started.then(tick);
    tick();
    button.onclick = function () {
      if (button.disabled) return;
      ticking = false;
      button.disabled = true;
      var seconds = (performance.now() - shownAt) / 1000;
      guard(started.then(function () {
        return sendEvent("instructions_end", { seconds: Math.round(seconds * 10) / 10 });
      }).then(function () {
        state.session.stage = "trials";
        // Once the instructions are over, nothing sends the participant back to them.
        guard(nextTrial(), route);
      }), function () { ticking = true; showInstructions(); });
    };
  }

  // ---------------------------------------------------------------- trials

  var display = $("trial-display");
  var continueButton = $("trial-continue");
  var statusLine = $("trial-status");
  var preloadBox = $("trial-preload");
  var preloadBar = $("trial-preload-bar");
  var imageError = $("trial-image-error");
  var preloaded = {}; // url -> Image, kept so that the browser keeps them decoded
  var IMAGE_RETRIES = 3;

  // Loads one image, retrying with growing pauses; rejects after the retries.
  function loadImage(img, url) {
    var attempt = 0;
    function once() {
      return new Promise(function (resolve, reject) {
        img.onload = function () { resolve(); };
        img.onerror = function () { reject(new ApiError(0, "An image could not be loaded.", true)); };
        // Set again after a failure: the browser fetches it anew (a failed load is not cached).
        img.removeAttribute("src");
        img.src = url;
        if (img.complete && img.naturalWidth > 0) resolve();
      }).catch(function (error) {
        if (attempt >= IMAGE_RETRIES) throw error;
        attempt += 1;
        return sleep(300 * Math.pow(2, attempt)).then(once);
      });
    }
    return once().then(function () {
      return img.decode ? img.decode().catch(function () {}) : undefined;
    });
  }

  // Loads these images behind the trial screen's progress bar, retrying any that fail; on failure the
  // trial screen says so and offers to try again, and the promise waits for that.
  function loadAll(images, ahead, seq) {
    var total = images.length + ahead.length;
    var loaded = 0;
    function counted(promise) {
      return promise.then(function () {
        loaded += 1;
        preloadBar.value = total ? loaded / total : 1;
      });
    }
    // The images of later trials are a head start: one that fails is tried again on its own trial.
    var later = ahead.map(function (url) { return counted(loadImage(cachedImage(url), url).catch(function () {})); });
    function attempt(pending) {
      var failed = [];
      return Promise.all(pending.map(function (img) {
        return counted(loadImage(img, img.dataset.src)).catch(function () { failed.push(img); });
      })).then(function () {
        if (!failed.length || state.seq !== seq) return;
        preloadBox.hidden = true;
        imageError.hidden = false;
        $("trial-image-retry").focus();
        return new Promise(function (resolve) {
          $("trial-image-retry").onclick = function () {
            imageError.hidden = true;
            resolve(attempt(failed));
          };
        });
      });
    }
    return Promise.all([attempt(images)].concat(later));
  }

  function cachedImage(url) {
    if (!preloaded[url]) preloaded[url] = new Image();
    return preloaded[url];
  }

  // Keeps the next trials' images loading in the background, and lets go of older ones.
  function preload(urls) {
    var keep = {};
    (urls || []).forEach(function (url) {
      keep[url] = preloaded[url] || new Image();
      if (!keep[url].src) keep[url].src = url;
    });
    preloaded = keep;
  }

  function round1(x) { return Math.round(x * 10) / 10; }

  // The display as the participant saw it on this trial: window, screen, pixel ratio, zoom, browser, and every
  // image's rendered size in CSS pixels and in device pixels (CSS x devicePixelRatio).
  function geometry(images) {
    var dpr = window.devicePixelRatio || 1;
    var css = images.map(function (img) {
      var box = img.getBoundingClientRect();
      return [round1(box.width), round1(box.height), img.naturalWidth, img.naturalHeight];
    });
    var sides = css.map(function (size) { return Math.min(size[0], size[1]); });
    var smallest = sides.length ? Math.min.apply(null, sides) : 0;
    var largest = sides.length ? Math.max.apply(null, sides) : 0;
    return {
      window_width: window.innerWidth,
      window_height: window.innerHeight,
      screen_width: window.screen.width,
      screen_height: window.screen.height,
      device_pixel_ratio: dpr,
      // Browsers do not tell their zoom; the outer and inner widths differ by it (null in headless browsers).
      zoom: window.outerWidth > 0 ? Math.round((window.outerWidth / window.innerWidth) * 100) / 100 : null,
      pinch_zoom: window.visualViewport ? window.visualViewport.scale : null,
      fullscreen: !!document.fullscreenElement,
      user_agent: navigator.userAgent.slice(0, 400),
      image_css_px_min: smallest,
      image_css_px_max: largest,
      image_device_px_min: round1(smallest * dpr),
      image_device_px_max: round1(largest * dpr),
      images: css, // [css width, css height, natural width, natural height] in display order
    };
  }

  function moduleFor(name) {
    var module = protocols[name];
    if (!module) throw new ApiError(0, "This page cannot show trials of the protocol " + name + ".", false);
    return module;
  }

  function nextTrial() {
    state.mode = "loading";
    return request("GET", sessionPath("/trial")).then(function (res) {
      var trial = res.data;
      if (trial.done) {
        state.session.stage = "feedback";
        return showFeedback();
      }
      return presentTrial(trial);
    });
  }

  function progressText(trial) {
    if (trial.phase === "practice") {
      return "Practice round " + trial.attempt + ": trial " + trial.position + " of " + trial.of;
    }
    return "Trial " + trial.position + " of " + trial.of;
  }

  // ---------------------------------------------------------------- pauses: the window too small for the trial

  var trialScreen = $("screen-trial");
  var windowScreen = $("screen-window");
  var pauseWaiters = []; // resolved when the pause ends

  // Whether the trial on screen fits: the study's minimum window and, once the images have a calibrated size (the
  // layout cannot shrink them then), the whole trial screen without scrolling. While the images load, the progress
  // bar takes room of its own: only the minimum counts then.
  function trialFits() {
    if (!windowFits()) return false;
    var calibration = state.session.calibration;
    if (!(calibration && calibration.px_per_mm) || display.classList.contains("loading")) return true;
    var root = document.documentElement;
    return root.scrollWidth <= root.clientWidth && root.scrollHeight <= root.clientHeight;
  }

  // Pauses the trial on screen when the window is too small for it, and resumes it once it is not.
  function checkTrialWindow() {
    if (app.dataset.screen !== "trial") return;
    if (trialFits()) {
      if (state.paused) resumeTrial();
      return;
    }
    var minimum = windowFits();
    describeWindow(minimum);
    if (!state.paused) pauseTrial(minimum ? "image_size" : "min_window");
    windowScreen.classList.add("covering");
    windowScreen.hidden = false;
  }

  function pauseTrial(reason) {
    state.paused = true;
    state.pausedAt = performance.now();
    state.pausedFocus = document.activeElement;
    // Nothing under the message can be clicked, focused or typed into; the keys are the shell's to refuse.
    trialScreen.inert = true;
    $("window-paused").hidden = false;
    noteEvent("window_pause", { reason: reason, window_width: window.innerWidth, window_height: window.innerHeight });
  }

  function resumeTrial() {
    var seq = state.seq;
    state.paused = false;
    windowScreen.hidden = true;
    windowScreen.classList.remove("covering");
    $("window-paused").hidden = true;
    trialScreen.inert = false;
    noteEvent("window_resume", {
      paused_ms: Math.round(performance.now() - state.pausedAt),
      window_width: window.innerWidth,
      window_height: window.innerHeight,
    });
    var focus = state.pausedFocus;
    function refocus() { if (focus && focus.focus && document.contains(focus)) focus.focus(); }
    var relock = state.mode === "ready";
    if (relock || state.mode === "locked") {
      // The lock starts again from the first frame in which the trial is visible again, so that the trial is
      // seen for all of it before an answer counts.
      state.mode = "locked";
      state.onset = performance.now();
      nextFrame().then(function () { if (state.seq === seq && !state.paused) state.onset = performance.now(); });
    }
    if (relock) {
      // A module that already took answers has live buttons: the shell holds them (inert) until the lock is over.
      display.inert = true;
      lockOver(seq).then(function () {
        if (state.mode !== "locked") return;
        state.mode = "ready";
        display.inert = false;
        refocus();
      });
    } else {
      refocus();
    }
    var waiting = pauseWaiters;
    pauseWaiters = [];
    waiting.forEach(function (resolve) { resolve(); });
  }

  function unpaused() {
    if (!state.paused) return Promise.resolve();
    return new Promise(function (resolve) { pauseWaiters.push(resolve); });
  }

  // Resolves once the trial has been on screen, unpaused, for the whole lock since its last onset.
  function lockOver(seq) {
    if (state.seq !== seq) return new Promise(function () {});
    if (state.paused) return unpaused().then(function () { return lockOver(seq); });
    var left = state.onset + state.session.timing.lock_ms - performance.now();
    if (left > 0) return sleep(left).then(function () { return lockOver(seq); });
    return Promise.resolve();
  }

  window.addEventListener("resize", checkTrialWindow);

  // What the shell lends a trial module for one trial; stale once another trial is shown.
  function trialContext(seq) {
    var timing = state.session.timing;
    return {
      timing: timing,
      sleep: sleep,
      onKey: function (handler) { if (state.seq === seq) state.onKey = handler; },
      present: function (images) {
        var trial = state.trial;
        // A round's first trial loads the round ahead behind a progress bar; later ones show it if slow.
        var first = trial.position === 1;
        var ahead = first ? trial.preload || [] : [];
        preloadBox.hidden = !first;
        var slowTimer = setTimeout(function () {
          if (state.seq === seq && state.mode === "loading") preloadBox.hidden = false;
        }, 400);
        state.images = images;
        return loadAll(images, ahead, seq).then(function () {
          clearTimeout(slowTimer);
          if (state.seq !== seq) return new Promise(function () {});
          preloadBox.hidden = true;
          display.classList.remove("loading");
          statusLine.textContent = state.resumed ? "Welcome back: you continue where you left off." : "";
          state.resumed = false;
          // Drawn at its calibrated size, the trial may need a larger window: it waits for one.
          checkTrialWindow();
          return unpaused();
        }).then(nextFrame).then(function () {
          if (state.seq !== seq) return new Promise(function () {});
          // Onset: the first frame in which every image of the trial is visible.
          state.onset = performance.now();
          state.mode = "locked";
          preload(trial.preload);
          return lockOver(seq);
        }).then(function () {
          if (state.seq !== seq || state.mode !== "locked") return new Promise(function () {});
          state.mode = "ready";
        });
      },
    };
  }

  function presentTrial(trial) {
    var seq = ++state.seq;
    state.trial = trial;
    state.pending = null;
    state.answer = null;
    state.result = null;
    state.onKey = null;
    state.mode = "loading";

    var screen = $("screen-trial");
    screen.dataset.index = String(trial.index);
    screen.dataset.phase = trial.phase;
    $("trial-prompt").textContent = state.session.prompt;
    $("trial-progress").textContent = progressText(trial);
    continueButton.hidden = true;
    statusLine.textContent = "";
    display.textContent = "";
    display.classList.add("loading");
    display.inert = false;
    preloadBar.value = 0;
    preloadBox.hidden = imageError.hidden = true;
    show("trial");
    checkTrialWindow();

    // Rejects when an image fails to load, for the caller's guard to show.
    return Promise.resolve(moduleFor(trial.protocol).trial(display, trial, trialContext(seq))).then(
      function (fields) { if (state.seq === seq) answer(seq, fields); }
    );
  }

  function answer(seq, fields) {
    if (state.mode !== "ready") return;
    state.mode = "answering";
    state.onKey = null;
    state.clickedAt = performance.now();
    state.answer = fields;
    state.pending = Object.assign({}, fields, {
      index: state.trial.index,
      rt_ms: Math.max(0, Math.round(state.clickedAt - state.onset)),
      client_id: uuid4(),
      geometry: geometry(state.images || []),
    });
    submitAnswer(seq);
  }

  function submitAnswer(seq) {
    var timing = state.session.timing;
    var module = moduleFor(state.trial.protocol);
    request("POST", sessionPath("/responses"), state.pending).then(function (res) {
      if (state.seq !== seq) return;
      state.result = res.data;
      return sleep(timing.feedback_delay_ms - (performance.now() - state.clickedAt)).then(function () {
        if (state.seq !== seq) return;
        return module.feedback(display, state.trial, state.answer, state.result, trialContext(seq));
      }).then(function () {
        if (state.seq !== seq) return;
        state.mode = "continue";
        continueButton.hidden = false;
        continueButton.focus();
      });
    }).catch(function (error) {
      if (state.seq !== seq) return;
      if (error instanceof ApiError && error.status === 409) {
        // Answered elsewhere (another tab or device) or out of step: show the current trial.
        return guard(nextTrial(), route);
      }
      showError(error instanceof ApiError ? error : new ApiError(0, String(error), true), function () {
        show("trial");
        submitAnswer(seq);
      });
    });
  }

  function onContinue() {
    if (state.mode !== "continue") return;
    state.mode = "idle";
    continueButton.hidden = true;
    var result = state.result;
    if (result.practice) return showPracticeMessage(result.practice);
    if (result.done) {
      state.session.stage = "feedback";
      return showFeedback();
    }
    guard(nextTrial(), route);
  }

  function showPracticeMessage(practice) {
    if (practice.passed) {
      $("message-title").textContent = "Practice complete, the main block starts";
      $("message-text").textContent = "Well done: every practice answer was right. The main block has " +
        state.session.trials_per_session + " trials and works the same way, " + (state.session.main_feedback
          ? "with feedback after each answer."
          : "but without feedback: you are no longer told whether an answer was right.");
      $("message-continue").textContent = "Start the main block";
    } else {
      $("message-title").textContent = "The practice round repeats";
      $("message-text").textContent = practice.wrong + " of the " + practice.of + " answers in this round " +
        (practice.wrong === 1 ? "was" : "were") + " wrong. The main block starts once every answer of a practice " +
        "round is right, so here is the practice round again; take your time with each screen.";
      $("message-continue").textContent = "Repeat the practice round";
    }
    show("message");
    var button = $("message-continue");
    button.disabled = false;
    button.focus();
    button.onclick = function () {
      button.disabled = true;
      guard(nextTrial(), route);
    };
  }

  // ---------------------------------------------------------------- feedback, completion

  function showFeedback() {
    show("feedback");
    var button = $("feedback-submit");
    button.disabled = false;
    button.onclick = function () {
      button.disabled = true;
      var text = $("feedback-text").value.trim();
      guard(request("POST", sessionPath("/complete"), { feedback: text }).then(function (res) {
        state.session.stage = "done";
        showDone(res.data || {}, true);
      }), showFeedback);
    };
  }

  function submitToMturk(handBack) {
    var form = document.createElement("form");
    form.method = "POST";
    form.action = handBack.submit_url;
    form.target = "_self";
    var fields = handBack.fields || {};
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  function showDone(handBack, fresh) {
    show("done");
    var code = handBack.completion_code;
    $("done-code").hidden = !code;
    if (code) {
      $("completion-code").textContent = code;
      $("copy-code").onclick = function () {
        if (navigator.clipboard) navigator.clipboard.writeText(code).catch(function () {});
      };
    }
    var text = $("done-text");
    var link = $("done-link");
    var submit = $("done-submit");
    link.hidden = true;
    submit.hidden = true;
    if (handBack.submit_url) {
      text.textContent = fresh
        ? "Submitting your work to Mechanical Turk…"
        : "If your HIT was not submitted yet, submit it here.";
      submit.hidden = false;
      submit.onclick = function () { submit.disabled = true; submitToMturk(handBack); };
      if (fresh) submitToMturk(handBack);
    } else if (handBack.redirect_url) {
      text.textContent = "Please note your code. You are returned to Prolific in a few seconds.";
      link.href = handBack.redirect_url;
      link.textContent = "Return to Prolific now";
      link.hidden = false;
      if (fresh) setTimeout(function () { window.location.assign(handBack.redirect_url); }, 4000);
    } else if (code) {
      text.textContent = "Please keep this code: you may need it to receive your compensation.";
    } else {
      text.textContent = "Your answers have been saved. You can close this page.";
    }
  }

  // ---------------------------------------------------------------- input

  continueButton.addEventListener("click", onContinue);

  // Enter or Space continue after the feedback; while a trial accepts answers, every key (Enter and
  // Space too: a pointing module clicks with them) goes to its module.
  var CARD_KEYS = { arrowleft: -1, arrowdown: -1, arrowright: 1, arrowup: 1 };

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (app.dataset.screen === "calibration") {
      var step = CARD_KEYS[(event.key || "").toLowerCase()];
      if (step) {
        event.preventDefault();
        stepCard(step * (event.shiftKey ? 10 : 1));
      }
      return;
    }
    if (app.dataset.screen !== "trial" || state.paused) return;
    // Keys typed into a trial's own text box (a name) are the module's: Space is a space there.
    if (state.mode !== "continue" && event.target && event.target.closest && event.target.closest("input, textarea")) return;
    var key = (event.key || "").toLowerCase();
    if (key === "enter" || key === " " || key === "spacebar") {
      event.preventDefault();
      if (event.repeat) return;
      if (state.mode === "ready" && state.onKey) state.onKey(key, event);
      else onContinue();
      return;
    }
    if (event.repeat || state.mode !== "ready" || !state.onKey) return;
    if (state.onKey(key, event)) event.preventDefault();
  });

  // Focus changes and pauses are recorded for the quality checks; best effort, never in the way. They
  // are sent one after the other so that the server stores them in the order they happened, and
  // carry the client's clock for when the network delays them.
  var eventChain = Promise.resolve();

  function noteEvent(type, facts) {
    if (!state.session || !state.token) return;
    if (state.session.stage === "done") return;
    var payload = Object.assign({ screen: app.dataset.screen || "", client_time: new Date().toISOString() }, facts);
    if (state.trial && app.dataset.screen === "trial") payload.index = state.trial.index;
    eventChain = eventChain.then(function () {
      return sendEvent(type, payload, { keepalive: true, retries: 1 }).catch(function () {});
    });
  }
  window.addEventListener("blur", function () { noteEvent("blur"); });
  window.addEventListener("focus", function () { noteEvent("focus"); });

  $("error-reload").addEventListener("click", function () { window.location.reload(); });

  // Leaving mid-study asks first (the answers are saved, and the same link resumes, but a worker who
  // closes the tab by mistake loses the task).
  window.addEventListener("beforeunload", function (event) {
    if (!state.session || !state.token || state.session.stage !== "trials") return;
    event.preventDefault();
    event.returnValue = "";
  });

  window.psyplatform = {
    // Protocol modules call this when their script loads, before the page starts.
    registerProtocol: function (name, module) { protocols[name] = module; },
    // What every module draws with: an element, and an image that ctx.present(images) loads.
    element: function (tag, className, text) {
      var node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined) node.textContent = text;
      return node;
    },
    image: function (url, className, alt) {
      var img = window.psyplatform.element("img", className);
      img.alt = alt || "";
      img.draggable = false;
      img.dataset.src = url; // the shell loads it
      return img;
    },
    // Lays a block out as a payload's grid ({columns, rows}, or a sample screen's dataset): sets the --cols and
    // --rows its stylesheet sizes cells by. Through the CSSOM: the page's Content-Security-Policy refuses inline
    // style attributes.
    grid: function (node, grid) {
      node.style.setProperty("--cols", String(grid.columns));
      node.style.setProperty("--rows", String(grid.rows));
    },
    // For tests and debugging only: which stage/trial the page is on. Nothing about the answer.
    state: function () {
      return { screen: app.dataset.screen, mode: state.mode, index: state.trial && state.trial.index };
    },
  };

  // Deferred scripts run in order before DOMContentLoaded: every module is registered by then.
  document.addEventListener("DOMContentLoaded", start);
})();
