// Accessible drop-down menus (button + role="menu") and toggled panels.
// Keys: Enter/Space/ArrowDown open a menu on its first item, ArrowUp on the last; inside,
// arrows/Home/End move, Escape closes and returns focus to the button, Tab closes.

const openMenus = new Set();
const openablePanels = [];

function items(menu) {
  return [...menu.querySelectorAll('[role="menuitem"]:not([hidden]):not([disabled])')];
}

export function closeAllMenus(except = null) {
  for (const m of [...openMenus]) if (m !== except) m.close(false);
}

/**
 * Wire a menu button to its menu element.
 * @param {HTMLButtonElement} button
 * @param {HTMLElement} menu  role="menu" element whose items are role="menuitem" buttons
 */
export function setupMenu(button, menu) {
  const control = {
    open(focusLast = false) {
      closeAllMenus(control);
      menu.hidden = false;
      button.setAttribute("aria-expanded", "true");
      openMenus.add(control);
      const list = items(menu);
      if (list.length) list[focusLast ? list.length - 1 : 0].focus();
    },
    close(returnFocus = true) {
      menu.hidden = true;
      button.setAttribute("aria-expanded", "false");
      openMenus.delete(control);
      if (returnFocus) button.focus();
    },
  };
  button.addEventListener("click", () => (menu.hidden ? control.open() : control.close()));
  button.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      control.open(e.key === "ArrowUp");
    }
  });
  menu.addEventListener("keydown", (e) => {
    const list = items(menu);
    const at = list.indexOf(document.activeElement);
    let next = null;
    if (e.key === "ArrowDown") next = (at + 1) % list.length;
    else if (e.key === "ArrowUp") next = (at - 1 + list.length) % list.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = list.length - 1;
    else if (e.key === "Escape") {
      e.preventDefault();
      control.close();
      return;
    } else if (e.key === "Tab") {
      control.close(false);
      return;
    }
    if (next !== null && list.length) {
      e.preventDefault();
      list[next].focus();
    }
  });
  // Activating an item closes the menu (the item's own click handler does the work).
  menu.addEventListener("click", (e) => {
    if (e.target.closest('[role="menuitem"]')) control.close();
  });
  return control;
}

/** Add a role="menuitem" button to a menu. */
export function addMenuItem(menu, label, onSelect, hint = "") {
  const item = document.createElement("button");
  item.type = "button";
  item.setAttribute("role", "menuitem");
  item.tabIndex = -1;
  item.textContent = label;
  if (hint) item.title = hint;
  item.addEventListener("click", onSelect);
  menu.append(item);
  return item;
}

export function addMenuSeparator(menu) {
  const sep = document.createElement("div");
  sep.setAttribute("role", "separator");
  menu.append(sep);
}

// Clicking anywhere outside an open menu closes it.
document.addEventListener("pointerdown", (e) => {
  for (const m of [...openMenus]) {
    if (!e.target.closest(".menu-wrap")) m.close(false);
  }
});

/**
 * A toolbar button that shows/hides a panel. Escape inside the panel closes it and returns
 * focus to the button; opening focuses the panel's first control.
 */
export function setupPanel(button, panel, onOpen = () => {}, group = null) {
  const control = {
    get isOpen() {
      return !panel.hidden;
    },
    open() {
      // Panels of one group share a place on screen: only one is open at a time.
      if (group) for (const other of group) if (other !== control && other.isOpen) other.close(false);
      panel.hidden = false;
      button.setAttribute("aria-expanded", "true");
      onOpen();
      const first = panel.querySelector("textarea, input, select, .osk-key, button:not(.close)");
      if (first) first.focus();
    },
    close(returnFocus = true) {
      panel.hidden = true;
      button.setAttribute("aria-expanded", "false");
      if (returnFocus) button.focus();
    },
    toggle() {
      if (panel.hidden) control.open();
      else control.close();
    },
  };
  button.addEventListener("click", () => control.toggle());
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      control.close();
    }
  });
  for (const close of panel.querySelectorAll("[data-close]")) {
    close.addEventListener("click", () => control.close());
  }
  openablePanels.push(control);
  if (group) group.push(control);
  return control;
}

// Escape outside the capture area (which sends Escape to the target and stops the event)
// closes an open menu, else the most recently opened panel still open.
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || e.defaultPrevented) return;
  if (openMenus.size) {
    closeAllMenus();
    return;
  }
  const open = openablePanels.filter((p) => p.isOpen);
  if (open.length) {
    e.preventDefault();
    open[open.length - 1].close();
  }
});
