/*
 * The study page's job panel: while a job is queued or running it asks the server every two seconds
 * how the job stands (stage, percentage, rate, time left) and redraws the rows, until every job is
 * done or failed.
 */
(function () {
  "use strict";

  var COLUMNS = ["kind", "stage", "progress", "rate", "eta", "message"];

  function active(jobs) {
    return jobs.some(function (job) { return job.status === "queued" || job.status === "running"; });
  }

  function draw(panel, jobs) {
    var body = panel.querySelector("tbody");
    body.textContent = "";
    jobs.forEach(function (job) {
      var row = document.createElement("tr");
      row.dataset.status = job.status;
      COLUMNS.forEach(function (name) {
        var cell = document.createElement("td");
        cell.className = "job-" + name;
        if (name === "progress") {
          var bar = document.createElement("progress");
          bar.max = 100;
          bar.value = job.percent;
          cell.appendChild(bar);
          cell.appendChild(document.createTextNode(" " + job.progress));
        } else {
          cell.textContent = job[name];
        }
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
  }

  function poll(panel) {
    fetch(panel.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) { return res.json(); })
      .then(function (data) {
        draw(panel, data.jobs);
        if (active(data.jobs)) setTimeout(function () { poll(panel); }, 2000);
      })
      .catch(function () { setTimeout(function () { poll(panel); }, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("job-panel");
    if (panel && panel.querySelector('tr[data-status="queued"], tr[data-status="running"]')) poll(panel);
  });
})();
