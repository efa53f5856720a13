/*
 * The 2-AFC trial module: a block of minimally activating references on the left, one of maximally
 * activating references on the right (each laid out as the payload's grid), and two queries between
 * them with three confidence buttons each. Answers {choice: 0 upper | 1 lower, confidence: 1-3}.
 * A payload without minimally activating references (Max-only designs) shows the queries left of
 * the maximally activating block.
 *
 * Keyboard: 1 2 3 answer for the upper image, Q W E for the lower one (confidence 1, 2, 3).
 */
(function () {
  "use strict";

  var UPPER_CODES = { Digit1: 1, Digit2: 2, Digit3: 3, Numpad1: 1, Numpad2: 2, Numpad3: 3 };
  var UPPER_KEYS = { "1": 1, "2": 2, "3": 3 };
  var LOWER_KEYS = { q: 1, w: 2, e: 3 };
  var KEY_LABELS = [["1", "2", "3"], ["Q", "W", "E"]];
  var HINTS = ["not sure", "fairly sure", "very sure"];
  var POSITIONS = ["Upper", "Lower"];

  var element = window.psyplatform.element;
  var image = window.psyplatform.image;
  var layOut = window.psyplatform.grid; // the reference blocks, as the payload's grid says

  function block(side, caption, urls) {
    var figure = element("figure", "block block-" + side);
    figure.appendChild(element("figcaption", "", caption));
    var grid = element("div", "grid");
    urls.forEach(function (url) { grid.appendChild(image(url)); });
    figure.appendChild(grid);
    return figure;
  }

  function query(choice, url) {
    var box = element("div", "query");
    box.dataset.choice = String(choice);
    box.appendChild(image(url, "query-image", POSITIONS[choice] + " image"));
    var buttons = element("div", "choices");
    buttons.setAttribute("role", "group");
    buttons.setAttribute("aria-label", POSITIONS[choice] + " image: confidence");
    [1, 2, 3].forEach(function (confidence) {
      var button = element("button", "choice");
      button.type = "button";
      button.disabled = true;
      button.dataset.choice = String(choice);
      button.dataset.confidence = String(confidence);
      button.appendChild(element("span", "conf", String(confidence)));
      button.appendChild(element("span", "hint", HINTS[confidence - 1]));
      button.appendChild(element("kbd", "", KEY_LABELS[choice][confidence - 1]));
      buttons.appendChild(button);
    });
    box.appendChild(buttons);
    return box;
  }

  function trial(display, data, ctx) {
    var withMin = data.references.min.length > 0;
    var stage = element("div", withMin ? "stage" : "stage max-only");
    layOut(stage, data.grid);
    var queries = element("div", "queries");
    data.queries.forEach(function (url, choice) { queries.appendChild(query(choice, url)); });
    if (withMin) stage.appendChild(block("min", "Minimally activating examples", data.references.min));
    stage.appendChild(queries);
    stage.appendChild(block("max", "Maximally activating examples", data.references.max));
    display.appendChild(stage);

    var buttons = Array.prototype.slice.call(stage.querySelectorAll(".choice"));
    return ctx.present(Array.prototype.slice.call(stage.querySelectorAll("img"))).then(function () {
      return new Promise(function (resolve) {
        var answered = false;

        function choose(choice, confidence) {
          if (answered) return false;
          answered = true;
          buttons.forEach(function (button) {
            button.disabled = true;
            if (+button.dataset.choice === choice && +button.dataset.confidence === confidence) {
              button.classList.add("chosen");
            }
          });
          resolve({ choice: choice, confidence: confidence });
          return true;
        }

        buttons.forEach(function (button) {
          button.disabled = false;
          button.addEventListener("click", function () {
            choose(+button.dataset.choice, +button.dataset.confidence);
          });
        });
        ctx.onKey(function (key, event) {
          var upper = UPPER_CODES[event.code] || UPPER_KEYS[key];
          if (upper) return choose(0, upper);
          var lower = LOWER_KEYS[key];
          return lower ? choose(1, lower) : false;
        });
      });
    });
  }

  // Marks a query with a frame and a label: the label and the frame's line (solid for right, dashed for
  // wrong) tell what the colour tells, for those who do not see it.
  function mark(box, frame, text) {
    box.classList.add(frame);
    var label = element("span", "feedback-label", text);
    label.setAttribute("role", "status");
    box.insertBefore(label, box.querySelector(".choices"));
  }

  // After the answer is stored, the reply says whether it was right and which query was (result.right):
  // the chosen query is marked right or wrong, and after a wrong answer the right one is marked too. The
  // marks stay until the next trial. Nothing is marked when the reply does not say (no main feedback).
  function feedback(display, data, answer, result, ctx) {
    var chosen = display.querySelector('.query[data-choice="' + answer.choice + '"]');
    if (result.correct === true) {
      mark(chosen, "feedback-correct", "\u2713 Right: your answer");
    } else if (result.correct === false) {
      mark(chosen, "feedback-wrong", "\u2717 Wrong: your answer");
      var right = display.querySelector('.query[data-choice="' + result.right + '"]');
      if (right && typeof result.right === "number") mark(right, "feedback-right-answer", "\u2713 The right answer");
    }
    return ctx.sleep(ctx.timing.feedback_ms);
  }

  // The sample screens (the MTurk preview's, the instructions' example) come drawn by the server, with their
  // grid in data attributes.
  Array.prototype.forEach.call(document.querySelectorAll(".stage.sample"), function (stage) {
    layOut(stage, stage.dataset);
  });

  window.psyplatform.registerProtocol("2afc", { trial: trial, feedback: feedback });
})();
