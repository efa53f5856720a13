/*
 * Nameability, describe stage: a grid of a unit's top-activating images and a text box for a short name of what
 * they have in common. Answers {text, pasted, keystrokes, typing_ms, focus_lost}: the name as typed, and how it
 * was typed (the server derives its normalised form and flags from them).
 *
 * The word and character limits come with the trial; Submit stays disabled, saying why, until the name fits
 * them (the server refuses the same names). Enter submits.
 */
(function () {
  "use strict";

  // The server's rule for a word: letters or digits, with apostrophes and hyphens inside.
  var WORD = /[\p{L}\p{N}]+(?:['\u2019-][\p{L}\p{N}]+)*/gu;

  var element = window.psyplatform.element;
  var image = window.psyplatform.image;

  function countWords(text) {
    var found = text.match(WORD);
    return found ? found.length : 0;
  }

  function limitText(limits) {
    return limits.min_words === limits.max_words
      ? limits.min_words + (limits.min_words === 1 ? " word" : " words")
      : limits.min_words + " to " + limits.max_words + " words";
  }

  function trial(display, data, ctx) {
    var stage = element("div", "nm-stage");
    window.psyplatform.grid(stage, data.grid);
    var grid = element("div", "nm-grid");
    var images = data.exemplars.map(function (url) { return grid.appendChild(image(url)); });
    stage.appendChild(grid);

    var form = element("form", "nm-form");
    form.noValidate = true;
    var input = element("input", "nm-name");
    input.type = "text";
    input.name = "name";
    input.autocomplete = "off";
    input.spellcheck = true;
    input.maxLength = data.limits.max_chars;
    input.disabled = true;
    input.setAttribute("aria-label", "Your name for what these images have in common (" + limitText(data.limits) + ")");
    var submit = element("button", "nm-submit", "Submit");
    submit.type = "submit";
    submit.disabled = true;
    var hint = element("p", "nm-hint", limitText(data.limits));
    hint.setAttribute("aria-live", "polite");
    form.appendChild(input);
    form.appendChild(submit);
    stage.appendChild(form);
    stage.appendChild(hint);
    display.appendChild(stage);

    var signals = { pasted: false, keystrokes: 0, focus_lost: false };
    var firstInput = 0;

    function started() { if (!firstInput) firstInput = performance.now(); }

    function problem() {
      var text = input.value.trim();
      var words = countWords(text);
      if (!text) return "Type a name of " + limitText(data.limits) + ".";
      if (words < data.limits.min_words || words > data.limits.max_words) {
        return "Please use " + limitText(data.limits) + " (now " + words + ").";
      }
      if (text.length > data.limits.max_chars) return "Please keep it to " + data.limits.max_chars + " characters.";
      return "";
    }

    function check() {
      var why = problem();
      submit.disabled = !!why;
      hint.textContent = why || countWords(input.value) + " of at most " + data.limits.max_words + " words";
      hint.classList.toggle("nm-problem", !!why && input.value.trim() !== "");
      return !why;
    }

    input.addEventListener("keydown", function (event) {
      if (event.key.length === 1 || event.key === "Backspace" || event.key === "Delete") {
        signals.keystrokes += 1;
        started();
      }
    });
    input.addEventListener("paste", function () { signals.pasted = true; started(); });
    input.addEventListener("drop", function () { signals.pasted = true; started(); });
    input.addEventListener("input", check);
    function onBlur() { if (firstInput) signals.focus_lost = true; }
    window.addEventListener("blur", onBlur);

    return ctx.present(images).then(function () {
      return new Promise(function (resolve) {
        input.disabled = false;
        input.focus();
        check();
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          if (!check()) return;
          window.removeEventListener("blur", onBlur);
          input.disabled = true;
          submit.disabled = true;
          resolve({
            text: input.value,
            pasted: signals.pasted,
            keystrokes: signals.keystrokes,
            typing_ms: firstInput ? Math.round(performance.now() - firstInput) : 0,
            focus_lost: signals.focus_lost,
          });
        });
      });
    });
  }

  // A practice answer is told whether it was close to the concept's label, and the label; other answers only
  // that they were saved.
  function feedback(display, data, answer, result, ctx) {
    var note = element("p", "nm-feedback");
    if (result.expected !== undefined) {
      note.textContent = result.correct
        ? "Close: the expected name was \u201c" + result.expected + "\u201d."
        : "Not close enough: the expected name was \u201c" + result.expected + "\u201d.";
      note.classList.add(result.correct ? "feedback-correct" : "feedback-wrong");
    } else {
      note.textContent = "Saved.";
    }
    display.querySelector(".nm-stage").appendChild(note);
    return ctx.sleep(ctx.timing.feedback_ms);
  }

  Array.prototype.forEach.call(document.querySelectorAll(".nm-stage.sample"), function (stage) {
    window.psyplatform.grid(stage, stage.dataset);
  });

  window.psyplatform.registerProtocol("nameability", { trial: trial, feedback: feedback });
})();
