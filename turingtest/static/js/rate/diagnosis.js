/*
 * The diagnosis combobox: a text field that filters the study's diagnosis choices
 * (plus "Unsure"), ARIA 1.2 combobox pattern with aria-activedescendant.
 *
 * Keys inside the field: type to filter, Up/Down to move, Enter to pick, Esc to close the
 * list (a second Esc leaves the field). The options, the filtered list, the active row and
 * the picked option are this module's own state; the view reads the code through value().
 */

export const UNSURE = { code: "unsure", name: "Unsure" };

/**
 * Binds the combobox to ``input`` and ``list``.
 *
 * ``announce(text)`` tells the rater what was picked; ``leave()`` moves focus out of the
 * field (Esc with the list closed).
 */
export function createCombobox({ input, list, announce, leave }) {
  let options = [];
  let filtered = [];
  let active = -1;
  let selected = null;

  function renderList() {
    list.replaceChildren();
    filtered.forEach((option, i) => {
      const li = document.createElement("li");
      li.id = "dx-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === active));
      li.dataset.code = option.code;
      li.textContent = option.code === UNSURE.code ? option.name : option.name + " (" + option.code + ")";
      if (i === active) li.classList.add("active");
      li.addEventListener("mousedown", (e) => e.preventDefault()); // keep focus in the input
      li.addEventListener("click", () => pickOption(option));
      list.append(li);
    });
    if (filtered.length === 0) {
      const li = document.createElement("li");
      li.className = "no-match";
      li.textContent = "No match";
      list.append(li);
    }
    const open = !list.hidden;
    input.setAttribute("aria-expanded", String(open));
    if (open && active >= 0) {
      input.setAttribute("aria-activedescendant", "dx-option-" + active);
      const activeEl = document.getElementById("dx-option-" + active);
      if (activeEl && typeof activeEl.scrollIntoView === "function") activeEl.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function filterOptions() {
    const q = input.value.trim().toLowerCase();
    filtered = q
      ? options.filter((o) => o.name.toLowerCase().includes(q) || o.code.toLowerCase().startsWith(q))
      : options.slice();
    active = filtered.length ? 0 : -1;
  }

  function openList() {
    filterOptions();
    list.hidden = false;
    renderList();
  }

  function closeList() {
    list.hidden = true;
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function pickOption(option) {
    selected = option;
    input.value = option.name;
    closeList();
    announce("Diagnosis: " + option.name + ".");
  }

  input.addEventListener("input", () => {
    selected = null;
    openList();
  });
  input.addEventListener("focus", () => {
    if (!selected) openList();
  });
  input.addEventListener("blur", () => closeList());
  input.addEventListener("keydown", (e) => {
    const open = !list.hidden;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!open) {
        openList();
        return;
      }
      if (!filtered.length) return;
      const step = e.key === "ArrowDown" ? 1 : -1;
      active = (active + step + filtered.length) % filtered.length;
      renderList();
    } else if (e.key === "Enter" && open && active >= 0) {
      e.preventDefault();
      e.stopPropagation();
      pickOption(filtered[active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      if (open) closeList();
      else leave();
    }
  });

  return {
    /** The choices the server sent for this study (Unsure is always added). */
    setChoices(choices) {
      options = (choices || []).concat([UNSURE]);
    },

    /** Empties the field for a new item. */
    reset() {
      input.value = "";
      selected = null;
      closeList();
    },

    /** Fills in ``code`` (a previous answer being changed), when it is one of the choices. */
    prefill(code) {
      const option = options.find((o) => o.code === code);
      if (option) {
        selected = option;
        input.value = option.name;
      }
    },

    /** The diagnosis code, null when none given; throws with a message the rater can act on. */
    value() {
      const text = input.value.trim().toLowerCase();
      if (!text) return null;
      if (selected && selected.name.toLowerCase() === text) return selected.code;
      const exact = options.find((o) => o.code.toLowerCase() === text || o.name.toLowerCase() === text);
      if (exact) return exact.code;
      throw new Error("Pick a diagnosis from the list (or clear the field): “" + input.value.trim() + "” is not one of them.");
    },
  };
}
