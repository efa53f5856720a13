/* The rating protocol's trial module (tests only): one image and a row of rating buttons. */
(function () {
  "use strict";

  function trial(display, data, ctx) {
    var img = document.createElement("img");
    img.className = "rating-image";
    img.alt = "";
    img.dataset.src = data.image;
    var buttons = document.createElement("div");
    buttons.className = "ratings";
    for (var value = 1; value <= data.scale; value++) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "rating";
      button.disabled = true;
      button.dataset.rating = String(value);
      button.textContent = String(value);
      buttons.appendChild(button);
    }
    display.appendChild(img);
    display.appendChild(buttons);
    return ctx.present([img]).then(function () {
      return new Promise(function (resolve) {
        Array.prototype.forEach.call(buttons.children, function (button) {
          button.disabled = false;
          button.addEventListener("click", function () {
            Array.prototype.forEach.call(buttons.children, function (b) { b.disabled = true; });
            resolve({ rating: +button.dataset.rating });
          });
        });
      });
    });
  }

  function feedback(display, data, answer, result, ctx) {
    display.dataset.rated = String(answer.rating);
    return ctx.sleep(ctx.timing.feedback_ms);
  }

  window.psyplatform.registerProtocol("rating", { trial: trial, feedback: feedback });
})();
