"""The console's virtual-media panel against a real demo appliance: drag-and-drop upload (which
continues an interrupted upload of the same name), the file picker, attach as CD-ROM (the demo
drive shows the ISO's volume label), detach and delete."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from appliance.media.iso9660 import tiny_iso
from tests.browser.conftest import Console

pytestmark = pytest.mark.browser


def images(c: Console) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in c.api("GET", "/api/media/images")["images"]}


def drop_file(c: Console, name: str, data: bytes) -> None:
    """Drop a file on the panel's drop zone, as a user dragging it from the desktop would."""
    c.page.evaluate(
        """([name, b64]) => {
          const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], name, { type: "application/octet-stream" }));
          const zone = document.getElementById("media-drop");
          const init = { dataTransfer: dt, bubbles: true, cancelable: true };
          zone.dispatchEvent(new DragEvent("dragover", init));
          zone.dispatchEvent(new DragEvent("drop", init));
        }""",
        [name, base64.b64encode(data).decode()],
    )


def test_media_panel_upload_attach_detach(console: Console, tmp_path: Path) -> None:
    console.login()
    page = console.page
    iso = tiny_iso("CONSOLE ISO", size=256 * 2048)
    # an upload interrupted earlier: the first 100 KiB of the same file are on the appliance
    cut = 100 * 1024
    answer = page.request.fetch(
        f"{console.server.url}/api/media/images/console.iso",
        method="PUT",
        data=iso[:cut],
        headers={"Content-Range": f"bytes 0-{cut - 1}/{len(iso)}"},
    )
    assert answer.status == 200, answer.text()
    page.locator("#media-btn").wait_for(state="visible", timeout=10000)
    page.click("#media-btn")
    page.locator("#media-panel").wait_for(state="visible")
    page.locator("#media-images li[data-name='console.iso']", has_text="incomplete").wait_for()
    drop_file(console, "console.iso", iso)
    page.locator("#media-progress-text", has_text="Uploaded console.iso").wait_for(timeout=10000)
    assert images(console)["console.iso"]["state"] == "ready"
    assert images(console)["console.iso"]["size"] == len(iso)
    # the file picker
    other = tmp_path / "flash.img"
    other.write_bytes(bytes(64 * 1024))
    page.set_input_files("#media-file", str(other))
    page.locator("#media-progress-text", has_text="Uploaded flash.img").wait_for(timeout=10000)
    row = page.locator("#media-images li[data-name='console.iso']")
    row.locator("button", has_text="CD").click()
    page.locator("#media-drive", has_text="CD-ROM, read-only").wait_for(timeout=10000)
    page.locator("#media-drive", has_text="CONSOLE ISO").wait_for()
    assert console.api("GET", "/api/media")["image"] == "console.iso"
    assert row.locator("button", has_text="Delete").is_disabled()  # attached
    page.click("#media-detach")
    page.locator("#media-drive", has_text="Drive empty").wait_for(timeout=10000)
    page.once("dialog", lambda d: d.accept())
    page.locator("#media-images li[data-name='flash.img'] button", has_text="Delete").click()
    page.locator("#media-images li[data-name='flash.img']").wait_for(state="detached")
    assert set(images(console)) == {"console.iso"}
