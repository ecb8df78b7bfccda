// Group toggles for Atlases whose items come in groups (imported with --group): a checkbox per group.

/** Show a checkbox per group; `onChange` receives the indices (into `groups`) that are switched off. */
export function attachGroupToggles(groups: string[], onChange: (hidden: Set<number>) => void): void {
  const container = document.getElementById("groups") as HTMLElement;
  const hidden = new Set<number>();
  const title = document.createElement("strong");
  title.textContent = "Groups";
  container.replaceChildren(title);
  groups.forEach((group, index) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.dataset.group = group;
    box.addEventListener("change", () => {
      if (box.checked) hidden.delete(index);
      else hidden.add(index);
      onChange(hidden);
    });
    label.append(box, ` ${group}`);
    container.append(label);
  });
  container.hidden = false;
}
