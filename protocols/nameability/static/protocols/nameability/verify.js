/*
 * Nameability, verify stage: a name another participant wrote, and m candidate images; the participant picks
 * the one the name describes. Answers {choice: the picked image's position}. Keys 1 to m pick too.
 */
(function () {
  "use strict";

  var element = window.psyplatform.element;
  var image = window.psyplatform.image;

  function trial(display, data, ctx) {
    var stage = element("div", "nm-stage nm-verify");
    stage.style.setProperty("--cols", String(data.candidates.length));
    stage.appendChild(element("p", "nm-named", "\u201c" + data.name + "\u201d"));
    var row = element("div", "nm-candidates");
    var buttons = data.candidates.map(function (url, choice) {
      var button = element("button", "nm-candidate");
      button.type = "button";
      button.disabled = true;
      button.dataset.choice = String(choice);
      button.appendChild(image(url, "", "Image " + (choice + 1)));
      button.appendChild(element("kbd", "", String(choice + 1)));
      row.appendChild(button);
      return button;
    });
    stage.appendChild(row);
    display.appendChild(stage);

    return ctx.present(buttons.map(function (b) { return b.querySelector("img"); })).then(function () {
      return new Promise(function (resolve) {
        var answered = false;
        function choose(choice) {
          if (answered || choice < 0 || choice >= buttons.length) return false;
          answered = true;
          buttons.forEach(function (button) { button.disabled = true; });
          buttons[choice].classList.add("chosen");
          resolve({ choice: choice });
          return true;
        }
        buttons.forEach(function (button) {
          button.disabled = false;
          button.addEventListener("click", function () { choose(+button.dataset.choice); });
        });
        ctx.onKey(function (key) { return /^[1-9]$/.test(key) ? choose(+key - 1) : false; });
      });
    });
  }

  // The chosen image is framed green or red when the reply says whether it was right, not at all otherwise.
  function feedback(display, data, answer, result, ctx) {
    var chosen = display.querySelector('.nm-candidate[data-choice="' + answer.choice + '"]');
    var frame = result.correct === true ? "feedback-correct" : result.correct === false ? "feedback-wrong" : "";
    if (frame) chosen.classList.add(frame);
    return ctx.sleep(ctx.timing.feedback_ms).then(function () {
      if (frame) chosen.classList.remove(frame);
    });
  }

  window.psyplatform.registerProtocol("nameability_verify", { trial: trial, feedback: feedback });
})();
