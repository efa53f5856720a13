/*
 * The localizability trial module: exemplars with the unit's heat map laid over each (a separate PNG
 * the page composes over the plain image), and a query image large enough to point at. Answers
 * {clicks: [[x, y], ...], query_box: {...}}, the clicks in the query image's own pixels.
 *
 * A click's pixel comes from the event's position and the query's rendered box, both in the same CSS
 * viewport coordinates (clientX/Y and getBoundingClientRect), scaled by the image's own width and height
 * from the payload: so it does not depend on the image's CSS size, page zoom, devicePixelRatio,
 * scrolling or an enclosing frame (MTurk's).
 *
 * Keyboard: the query takes focus (Tab); arrows move a cross-hair by a twentieth of the image (Shift: one
 * pixel of the image), Enter or Space clicks there; with several clicks, Backspace undoes, C confirms.
 */
(function () {
  "use strict";

  var element = window.psyplatform.element;
  var image = window.psyplatform.image;

  function exemplarGrid(exemplars) {
    var figure = element("figure", "loc-exemplars");
    figure.appendChild(element("figcaption", "", "Examples: where the feature responds"));
    var grid = element("div", "loc-grid");
    // Set through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
    grid.style.gridTemplateColumns = "repeat(" + Math.ceil(exemplars.length / 3) + ", var(--cell))";
    exemplars.forEach(function (exemplar, number) {
      var cell = element("div", "loc-exemplar");
      cell.appendChild(image(exemplar.image, "", "Example " + (number + 1)));
      cell.appendChild(image(exemplar.overlay, "loc-overlay"));
      grid.appendChild(cell);
    });
    figure.appendChild(grid);
    return figure;
  }

  // The image pixel under a viewport point, or null outside the image.
  function pixelAt(img, size, clientX, clientY) {
    var box = img.getBoundingClientRect();
    if (!(box.width > 0 && box.height > 0)) return null;
    var x = Math.floor(((clientX - box.left) / box.width) * size.width);
    var y = Math.floor(((clientY - box.top) / box.height) * size.height);
    if (x < 0 || y < 0 || x >= size.width || y >= size.height) return null;
    return [x, y];
  }

  // Places a marker at an image pixel's centre, as a share of the box (so it follows any resize).
  function place(node, size, pixel) {
    node.style.left = (((pixel[0] + 0.5) / size.width) * 100) + "%";
    node.style.top = (((pixel[1] + 0.5) / size.height) * 100) + "%";
  }

  // The query's rendered box (the shell records the page's geometry beside it).
  function queryBox(img) {
    var box = img.getBoundingClientRect();
    return {
      css_width: box.width,
      css_height: box.height,
      device_pixel_ratio: window.devicePixelRatio || 1,
      viewport_width: window.innerWidth,
      viewport_height: window.innerHeight,
    };
  }

  function trial(display, data, ctx) {
    var size = { width: data.query.width, height: data.query.height };
    var several = data.max_clicks > 1;
    var stage = element("div", "loc-stage");
    stage.appendChild(exemplarGrid(data.exemplars));

    var block = element("figure", "loc-query-block");
    block.appendChild(element("figcaption", "", "New image: click where you expect the feature"));
    var query = element("div", "loc-query");
    query.tabIndex = 0;
    query.setAttribute("role", "application");
    query.setAttribute("aria-label", "New image: use the arrow keys to aim and Enter to click");
    var queryImage = image(data.query.image, "loc-query-image", "New image");
    query.appendChild(queryImage);
    var cursor = element("div", "loc-cursor");
    cursor.hidden = true;
    query.appendChild(cursor);
    block.appendChild(query);

    var actions = element("div", "loc-actions");
    var undo = element("button", "loc-undo", "Undo");
    var confirm = element("button", "loc-confirm", "Confirm");
    [undo, confirm].forEach(function (button) { button.type = "button"; button.disabled = true; });
    actions.appendChild(undo);
    actions.appendChild(confirm);
    actions.hidden = !several;
    block.appendChild(actions);
    stage.appendChild(block);
    display.appendChild(stage);

    var clicks = [];
    var markers = [];
    var aim = [Math.floor(size.width / 2), Math.floor(size.height / 2)];

    return ctx.present(Array.prototype.slice.call(stage.querySelectorAll("img"))).then(function () {
      return new Promise(function (resolve) {
        var answered = false;

        function refresh() {
          undo.disabled = answered || clicks.length === 0;
          confirm.disabled = answered || clicks.length === 0;
        }

        function finish() {
          if (answered || clicks.length === 0) return false;
          answered = true;
          cursor.hidden = true;
          refresh();
          resolve({ clicks: clicks.slice(), query_box: queryBox(queryImage) });
          return true;
        }

        function add(pixel) {
          if (answered || !pixel || clicks.length >= data.max_clicks) return false;
          clicks.push(pixel);
          var marker = element("div", "loc-marker");
          place(marker, size, pixel);
          query.appendChild(marker);
          markers.push(marker);
          refresh();
          if (!several) finish();
          return true;
        }

        function removeLast() {
          if (answered || clicks.length === 0) return false;
          clicks.pop();
          query.removeChild(markers.pop());
          refresh();
          return true;
        }

        function move(dx, dy) {
          aim = [
            Math.min(size.width - 1, Math.max(0, aim[0] + dx)),
            Math.min(size.height - 1, Math.max(0, aim[1] + dy)),
          ];
          cursor.hidden = false;
          place(cursor, size, aim);
          return true;
        }

        query.addEventListener("click", function (event) {
          add(pixelAt(queryImage, size, event.clientX, event.clientY));
        });
        undo.addEventListener("click", removeLast);
        confirm.addEventListener("click", finish);
        ctx.onKey(function (key, event) {
          var step = event.shiftKey ? 1 : Math.max(1, Math.round(size.width / 20));
          // The shell hands keys over in lower case.
          var moves = { arrowleft: [-step, 0], arrowright: [step, 0], arrowup: [0, -step], arrowdown: [0, step] };
          if (moves[key]) return move(moves[key][0], moves[key][1]);
          if ((key === "enter" || key === " " || key === "spacebar") && !cursor.hidden) return add(aim.slice());
          if (several && key === "backspace") return removeLast();
          if (several && key === "c") return finish();
          return false;
        });
      });
    });
  }

  // The query's own heat map appears with the clicks marked, hit or miss, and the query framed green or
  // red; without a verdict (no feedback on main trials) the reply carries no heat map and nothing shows.
  function feedback(display, data, answer, result, ctx) {
    var query = display.querySelector(".loc-query");
    var shown = Promise.resolve();
    if (result.query_overlay) {
      var overlay = element("img", "loc-overlay");
      overlay.alt = "";
      overlay.draggable = false;
      shown = new Promise(function (resolve) {
        overlay.onload = overlay.onerror = function () { resolve(); };
        overlay.src = result.query_overlay;
      });
      query.insertBefore(overlay, query.querySelector(".loc-cursor"));
    }
    var frame = result.correct === true ? "feedback-correct" : result.correct === false ? "feedback-wrong" : "";
    return shown.then(function () {
      if (result.query_overlay) query.classList.add("revealed");
      if (frame) {
        query.classList.add(frame);
        Array.prototype.forEach.call(query.querySelectorAll(".loc-marker"), function (marker) {
          marker.classList.add(result.correct ? "hit" : "miss");
        });
      }
      return ctx.sleep(ctx.timing.feedback_ms);
    }).then(function () {
      if (frame) query.classList.remove(frame);
    });
  }

  window.psyplatform.registerProtocol("localizability", { trial: trial, feedback: feedback });
})();
