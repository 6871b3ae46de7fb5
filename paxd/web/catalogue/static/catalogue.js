// paxd's catalogue: instant filtering of the pack list, and copy buttons.
// Served from /static/ (the Content-Security-Policy allows script-src 'self' only):
// no inline script, no framework. Without it the pages still work: the filter form
// is an ordinary GET form and the commands can be selected by hand.
"use strict";

(function () {
  // -- copy buttons: <button data-copy="ID"> copies the text of element ID ----------
  function copyText(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) {
      return;
    }
    var text = target.textContent;
    var done = function () {
      button.textContent = "Copied";
      button.classList.add("copied");
      window.setTimeout(function () {
        button.textContent = "Copy";
        button.classList.remove("copied");
      }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(target); });
    } else {
      selectText(target);
    }
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // -- the list's filter: cards hide at once, then the server's answer replaces them --
  var form = document.getElementById("filter");
  var pending = null;
  var asked = 0;

  function queryOf(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value) {
        params.set(key, value);
      }
    });
    var query = params.toString();
    return query ? "/?" + query : "/";
  }

  function hideAtOnce(text) {
    var needle = text.trim().toLowerCase();
    document.querySelectorAll("#cards .card").forEach(function (card) {
      var words = card.querySelector(".card-text");
      var haystack = words ? words.textContent.toLowerCase() : "";
      card.hidden = needle !== "" && haystack.indexOf(needle) < 0;
    });
  }

  function refresh() {
    var url = queryOf(form);
    var mine = ++asked;
    fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (mine !== asked) {
          return; // a newer request is on its way
        }
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("results");
        var current = document.getElementById("results");
        if (fresh && current) {
          current.replaceWith(document.importNode(fresh, true));
          window.history.replaceState(null, "", url);
          document.body.setAttribute("data-filtered", url);
        }
      })
      .catch(function () {
        form.submit(); // let the browser ask the ordinary way
      });
  }

  function schedule(delay) {
    if (pending !== null) {
      window.clearTimeout(pending);
    }
    pending = window.setTimeout(function () {
      pending = null;
      refresh();
    }, delay);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (button) {
      copyText(button);
    }
  });

  if (form) {
    var text = document.getElementById("filter-q");
    if (text) {
      text.addEventListener("input", function () {
        hideAtOnce(text.value);
        schedule(150);
      });
    }
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { schedule(0); });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      schedule(0);
    });
  }
})();
