"""Drives the service's dashboard in a real, headless Chromium through the DevTools protocol and
prints what it saw as one JSON line: the table's rows (twice, 2 s apart), the live view's pixels
(statistics of the <img> drawn into a canvas, twice), two screenshots (written as PNG files), a
camera added through the page's form and removed with its button, and how a camera name holding
HTML was shown.

usage: dashboard_check.py SERVICE_URL NEW_CAMERA_URL SCREENSHOT_DIR"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # websocket-client

service, new_camera_url, shots = sys.argv[1], sys.argv[2], sys.argv[3]
profile = tempfile.mkdtemp(prefix="tributary-chromium-")
browser = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            "--remote-debugging-port=0", "--user-data-dir=" + profile, "--window-size=1400,820", "about:blank"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
result = {}
try:
    active = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + 30
    while not (os.path.exists(active) and open(active).read().strip()):
        if time.monotonic() > deadline:
            raise SystemExit("chromium did not open its DevTools port")
        time.sleep(0.1)
    port = open(active).read().split()[0]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = next(t for t in targets if t["type"] == "page")
    ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
    counter = [0]

    def call(method, **params):
        counter[0] += 1
        ws.send(json.dumps({"id": counter[0], "method": method, "params": params}))
        while True:
            message = json.loads(ws.recv())
            if message.get("id") == counter[0]:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(expression):
        answer = call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression[:80]}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_for(expression, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        return None

    rows_js = """[...document.querySelectorAll('#cameras tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))"""
    # The live view's current frame drawn into a canvas: its size, the spread of its pixel values
    # (0 for a blank image) and a checksum (changes when the frame does).
    pixels_js = """(() => { const img = document.getElementById('live');
        if (!img.complete || !img.naturalWidth) return null;
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let n = 0, sum = 0, sq = 0, hash = 0;
        for (let i = 0; i < d.length; i += 4 * 97) { const v = d[i] + d[i + 1] + d[i + 2]; n++; sum += v; sq += v * v; hash = (hash * 31 + v) | 0; }
        const mean = sum / n; return {width: c.width, height: c.height, std: Math.sqrt(sq / n - mean * mean), hash: hash}; })()"""

    call("Page.enable")
    call("Runtime.enable")
    call("Emulation.setDeviceMetricsOverride", width=1400, height=820, deviceScaleFactor=1, mobile=False)
    call("Page.navigate", url=service + "/")
    result["rows_seen"] = bool(wait_for("document.querySelectorAll('#cameras tbody tr').length >= 2"))
    result["rows_first"] = evaluate(rows_js)
    result["pixels_first"] = wait_for(pixels_js, seconds=20)
    # The screenshots: the whole page, and the live view's area alone (a blank area compresses to
    # almost nothing; video does not).
    box = evaluate("(() => { const r = document.getElementById('live').getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()")
    area = {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}
    shot = call("Page.captureScreenshot", format="png")["data"]
    view1 = call("Page.captureScreenshot", format="png", clip=area)["data"]
    open(os.path.join(shots, "dashboard-1.png"), "wb").write(base64.b64decode(shot))
    time.sleep(2)
    result["rows_second"] = evaluate(rows_js)
    result["pixels_second"] = evaluate(pixels_js)
    shot2 = call("Page.captureScreenshot", format="png")["data"]
    view2 = call("Page.captureScreenshot", format="png", clip=area)["data"]
    open(os.path.join(shots, "dashboard-2.png"), "wb").write(base64.b64decode(shot2))
    result["screenshots_differ"] = shot != shot2
    result["view_screenshot_bytes"] = [len(base64.b64decode(view1)), len(base64.b64decode(view2))]
    result["view_screenshots_differ"] = view1 != view2

    # A camera added through the page's own form, its name holding HTML.
    name = "<script>window.injected=1</script><b>bold</b>"
    evaluate(f"""(() => {{ const f = document.getElementById('add');
        f.elements.url.value = {json.dumps(new_camera_url)}; f.elements.id.value = 'added';
        f.elements.name.value = {json.dumps(name)}; f.requestSubmit(); }})()""")
    result["added_row"] = wait_for("""(() => { const tr = document.querySelector('#cameras tbody tr[data-camera="added"]');
        return tr && [...tr.cells].map(td => td.textContent); })()""")
    result["added_message"] = evaluate("document.getElementById('message').textContent")
    result["html_injected"] = evaluate("window.injected === 1 || document.querySelectorAll('#cameras b, #cameras script').length > 0")
    # Its own view: click its row.
    evaluate("""document.querySelector('#cameras tbody tr[data-camera="added"]').click()""")
    result["single_view_src"] = evaluate("document.getElementById('live').getAttribute('src')")
    time.sleep(1.5)
    result["single_view_pixels"] = wait_for(pixels_js, seconds=10)
    evaluate("document.getElementById('back').click()")
    # Removed with its button.
    evaluate("""document.querySelector('#cameras tbody tr[data-camera="added"] button.remove').click()""")
    result["removed"] = bool(wait_for("""!document.querySelector('#cameras tbody tr[data-camera="added"]')"""))
    result["rows_last"] = evaluate(rows_js)
    ws.close()
finally:
    browser.kill()
    browser.wait()
    shutil.rmtree(profile, ignore_errors=True)
print(json.dumps(result), flush=True)
