// The console's own script: the CSRF header on every htmx request, and charts.
// Loaded as a file (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  var charts = new WeakMap();

  function drawCharts(root) {
    if (typeof Chart === "undefined") {
      return;
    }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var data = JSON.parse(canvas.getAttribute("data-chart"));
      var existing = charts.get(canvas);
      if (existing) {
        existing.data.labels = data.labels;
        existing.data.datasets[0].data = data.values;
        existing.update("none");
        return;
      }
      charts.set(
        canvas,
        new Chart(canvas, {
          type: "bar",
          data: {
            labels: data.labels,
            datasets: [
              {
                label: canvas.getAttribute("data-series-label") || "",
                data: data.values,
                backgroundColor: "#1f5fa8",
              },
            ],
          },
          options: {
            animation: false,
            responsive: true,
            plugins: { legend: { display: false } },
            scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
          },
        })
      );
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    drawCharts(event.target);
  });
})();
