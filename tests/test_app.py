"""`saga-sr app`: --help and the missing-model error; the page served on localhost and driven through its API
with gradio_client (upload -> result, a bad file, the target roll-off's effect); and a real headless Chromium
(Debian's chromium + chromedriver, `browser` marker) that uploads a file and waits for the result."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from saga_sr.cli import main

gradio_client = pytest.importorskip("gradio_client", reason="the app extra (gradio) is not installed")
from gradio_client import Client, handle_file  # noqa: E402

STEPS = 2
pytestmark = pytest.mark.slow  # a served page: ~25 s to start, seconds per call


def sensitive(model: torch.nn.Module) -> torch.nn.Module:
    """The tiny model with random weights everywhere (the real init zeroes the DiT's residual branches, so nothing
    would condition anything) and a strong roll-off path: the number embedders and the DiT's projections of
    the conditioning at std 1, the rest at 0.05. A random model, so only "different" is meaningful, not which
    way the high band moves."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            strong = "rolloff" in name or "to_global_embed" in name or "to_cond_embed" in name
            if strong or name.startswith("model.model"):
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 if strong else 0.05))
    return model


def write_tone(path: Path, sr: int, seconds: float = 0.5) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    noise = 0.01 * np.random.default_rng(0).standard_normal(len(t))
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t) + noise, sr)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory, make_tiny_model):
    """The page on 127.0.0.1:<free port>, uploads in a temporary folder; yields (url, upload folder)."""
    from saga_sr.app.page import build_page, launch
    from saga_sr.app.runner import Settings
    from saga_sr.inference.pipeline import Upsampler

    uploads = tmp_path_factory.mktemp("gradio")
    old = {k: os.environ.get(k) for k in ("GRADIO_TEMP_DIR", "GRADIO_ANALYTICS_ENABLED")}
    os.environ.update(GRADIO_TEMP_DIR=str(uploads), GRADIO_ANALYTICS_ENABLED="False")
    up = Upsampler(sensitive(make_tiny_model()), "cpu")
    page = build_page(up, model_label="random tiny", defaults=Settings(steps=STEPS, batch_size=8))
    port = free_port()
    launch(page, host="127.0.0.1", port=port, max_upload_mb=5, block=False)
    try:
        yield f"http://127.0.0.1:{port}/", uploads
    finally:
        page.close()
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def client(served, tmp_path_factory):
    return Client(
        served[0], verbose=False, download_files=str(tmp_path_factory.mktemp("client")), analytics_enabled=False
    )


def upsample(client, files, target=None, edge=None, prompt=""):
    """The page's /upsample; target None leaves "Set a target roll-off" unticked (none given)."""
    return client.predict(
        [handle_file(f) for f in files],
        None,
        target is not None,
        0.9 if target is None else target,
        prompt,
        STEPS,
        1.4,
        1.2,
        0,
        True,
        edge,
        api_name="/upsample",
    )


def high_band_energy(path: Path, lo_hz: float = 10000.0) -> float:
    y, sr = sf.read(path, always_2d=True)
    f = np.fft.rfftfreq(len(y), 1 / sr)
    return float((np.abs(np.fft.rfft(y[:, 0])) ** 2)[f >= lo_hz].sum())


def test_help_and_missing_model(capsys):
    out = subprocess.run([sys.executable, "-m", "saga_sr", "app", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--model", "--host", "--port", "--max-upload-mb", "127.0.0.1"):
        assert flag in out.stdout
    from saga_sr.models.shipped import default_model_path

    if default_model_path() is None:  # until a model ships, no --model is a usage error that says so
        assert main(["app"]) == 2 and "no --model given" in capsys.readouterr().err
    assert main(["app", "--model", "/nonexistent/model"]) == 2
    assert "--model /nonexistent/model: not found" in capsys.readouterr().err


def test_detect_then_upsample_one_file(client, tmp_path, served):
    src = write_tone(tmp_path / "tone8k.flac", 8000)
    (tmp_path / "tone8k.caption.txt").write_text("a sine")
    edge, detected = client.predict(
        [handle_file(src), handle_file(tmp_path / "tone8k.caption.txt")], None, api_name="/detect"
    )
    assert 0 < edge <= 4000 and "tone8k.flac" in detected and "caption from tone8k.caption.txt" in detected
    choice, in_audio, out_audio, spec, table, downloads, log = upsample(client, [src], edge=edge)
    assert choice["value"] == "tone8k.flac"
    y, sr = sf.read(out_audio, always_2d=True)
    assert sr == 44100 and y.shape == (round(0.5 * 44100), 1) and np.isfinite(y).all()
    assert Path(spec).stat().st_size > 10_000 and Path(downloads[0]).name == "tone8k.wav"
    assert sf.info(downloads[0]).samplerate == 44100
    assert f"input band edge (detected) **{edge / 1000:.2f} kHz**" in table and "target roll-off 0.900" in table
    assert "[1/1] tone8k.flac -> tone8k.wav" in log and "upsample: 1 ok, 0 failed" in log
    # uploads and results live in the page's temporary folder, nowhere else
    assert Path(out_audio).name == "tone8k.wav"
    assert any(p.name == "tone8k.wav" for p in (served[1] / "saga-sr-results").rglob("*.wav"))


def test_bad_file_gets_the_cli_line(client, tmp_path, capsys, tiny_model_dir):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really audio")
    good = write_tone(tmp_path / "ok.wav", 16000)
    choice, _, out_audio, _, table, downloads, log = upsample(client, [bad, good])
    assert "[1/2] FAILED broken.wav: cannot read audio" in log and "upsample: 1 ok, 1 failed (broken.wav)" in log
    assert "**broken.wav**: FAILED broken.wav: cannot read audio" in table
    assert choice["value"] == "ok.wav" and [Path(d).name for d in downloads] == ["ok.wav"]
    # the CLI prints the same reason for the same file
    code = main(["upsample", str(bad), "-o", str(tmp_path / "cli"), "--model", str(tiny_model_dir), "-q"])
    err = capsys.readouterr().err
    cli_reason = err.split(f"FAILED {bad}: ", 1)[1].splitlines()[0]
    assert code == 1 and f"FAILED broken.wav: {cli_reason.replace(str(bad), 'broken.wav')}" in log


def test_target_rolloff_changes_the_high_band(client, tmp_path):
    """Same file, seed and settings; only the target roll-off differs. The same target twice is
    bit-identical, so any difference comes from the control reaching the model."""
    src = write_tone(tmp_path / "tone.wav", 8000)
    low = upsample(client, [src], target=0.2)[2]
    low_again = upsample(client, [src], target=0.2)[2]
    high = upsample(client, [src], target=1.0)[2]
    e_low, e_again, e_high = (high_band_energy(Path(p)) for p in (low, low_again, high))
    assert e_low == e_again
    assert abs(e_high - e_low) / max(e_high, e_low) > 0.05, (e_low, e_high)
    # LFR keeps the input band: the difference is above it
    y_low, _ = sf.read(low, always_2d=True)
    y_high, _ = sf.read(high, always_2d=True)
    f = np.fft.rfftfreq(len(y_low), 1 / 44100)
    band = (f > 300) & (f < 600)
    a, b = np.abs(np.fft.rfft(y_low[:, 0]))[band], np.abs(np.fft.rfft(y_high[:, 0]))[band]
    assert np.abs(a - b).max() < 0.3 * a.max()


def test_two_users_queue_and_the_microphone(client, served, tmp_path):
    """A second user's job waits in the queue (one model, one job at a time) and then runs; a microphone
    recording goes through the same step."""
    other = Client(served[0], verbose=False, download_files=str(tmp_path / "other"), analytics_enabled=False)
    a = write_tone(tmp_path / "a.wav", 22050)
    rec = write_tone(tmp_path / "recording.wav", 48000)
    jobs = [
        client.submit([handle_file(a)], None, False, 0.9, "", STEPS, 1.4, 1.2, 0, True, None, api_name="/upsample"),
        other.submit(None, handle_file(rec), False, 0.9, "", STEPS, 1.4, 1.2, 0, True, None, api_name="/upsample"),
    ]
    logs = [job.result(timeout=300)[6] for job in jobs]
    assert "[1/1] a.wav -> a.wav" in logs[0] and "[1/1] microphone.wav -> microphone.wav" in logs[1]


def test_nothing_uploaded_is_an_error(client):
    with pytest.raises(Exception, match="Nothing to upsample"):
        client.predict(None, None, False, 0.9, "", STEPS, 1.4, 1.2, 0, True, None, api_name="/upsample")


# ---- a real browser ---------------------------------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.mark.browser
def test_headless_chromium_uploads_and_sees_the_result(served, tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):  # CI installs them: a missing browser there is a failure, not a skip
            pytest.fail(f"{CHROMIUM} / {CHROMEDRIVER} missing; .ci/run installs chromium and chromium-driver")
        pytest.skip("Debian chromium + chromium-driver not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1800",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        opts.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium never looks for a driver of its own
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        driver.get(served[0])
        wait = WebDriverWait(driver, 120)
        upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#inputs input[type=file]")))
        upload.send_keys(str(write_tone(tmp_path / "browser_tone.wav", 16000)))
        wait.until(ec.text_to_be_present_in_element((By.ID, "detected"), "detected band edge"))
        driver.find_element(By.ID, "run").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "summary"), "browser_tone.wav"))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#output-player audio")))
        img = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#spectrogram img")))
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#output-player button[aria-label=Play]")))
        shot = tmp_path / "app.png"
        driver.save_screenshot(str(shot))
        if os.environ.get("SAGA_SR_SCREENSHOT"):  # keep a copy to look at
            shutil.copy(shot, os.environ["SAGA_SR_SCREENSHOT"])
        # the output player's file, fetched and decoded by the browser: 44.1 kHz, the input's 0.5 s
        href = driver.find_element(By.CSS_SELECTOR, "#output-player a[download]").get_attribute("href")
        decoded = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.arrayBuffer())"
            ".then(b => new OfflineAudioContext(1, 1, 44100).decodeAudioData(b))"
            ".then(a => done([a.sampleRate, a.duration]), e => done(String(e)));",
            href,
        )
        assert decoded[0] == 44100 and abs(decoded[1] - 0.5) < 0.01, decoded
        assert driver.execute_script("return arguments[0].naturalWidth", img) > 300
        assert driver.find_elements(By.CSS_SELECTOR, "#input-player audio")
        assert "input band edge" in driver.find_element(By.ID, "summary").text
        assert shot.stat().st_size > 20_000
    finally:
        driver.quit()


def test_progress_counts_windows(tmp_path, make_tiny_model):
    """The page's progress text is windows done / total, from the pipeline's own count."""
    from saga_sr.app.runner import Settings, run_uploads, split_uploads
    from saga_sr.inference.pipeline import Upsampler

    up = Upsampler(sensitive(make_tiny_model()), "cpu", window_frames=32)
    seen = []
    src = write_tone(tmp_path / "t.wav", 16000, seconds=1.0)
    out = run_uploads(
        up,
        split_uploads([src]),
        tmp_path / "out",
        Settings(steps=1, batch_size=2),
        report=lambda f, text: seen.append((f, text)),
    )
    assert out[0].error is None and (tmp_path / "out" / "t.wav").is_file()
    windows = [text for _, text in seen if "windows" in text]
    total = int(windows[0].split("/")[-1])
    assert total > 4 and windows[0].endswith(f"windows 0/{total}") and windows[-1].endswith(f"{total}/{total}")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0


def test_upload_size_limit(client, tmp_path):
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros((6 * 1024 * 1024 // 4 + 1000, 1), dtype=np.float32) + 0.1, 16000, subtype="FLOAT")
    with pytest.raises(Exception, match="(?i)size|large|exceed"):
        upsample(client, [big])


def test_served_on_loopback_and_temp_folder_removed_at_stop(tmp_path, tiny_model_dir):
    """`saga-sr app` as a user starts it: 127.0.0.1 by default, uploads in a temporary folder that is gone
    after Ctrl+C, pressed while a job runs: the job ends at its next step and the process exits cleanly
    (a worker thread left inside torch aborted it: 'terminate called without an active exception', rc -6)."""
    import signal
    import threading
    import time
    import urllib.request

    model = tiny_model_dir
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "saga_sr", "app", "--model", str(model), "--port", str(port), "--device", "cpu"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    rest: list[str] = []
    try:
        line = proc.stderr.readline()
        # keep draining: a server whose stderr pipe fills up blocks in write() and cannot stop on Ctrl+C
        threading.Thread(target=lambda: rest.extend(proc.stderr), daemon=True).start()
        assert f"on http://127.0.0.1:{port}" in line, line
        tmp = Path(line.split("uploads in ", 1)[1].split(";", 1)[0])
        assert tmp.is_dir()
        deadline = time.monotonic() + 120
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the page never came up"
                time.sleep(0.5)
        assert "saga-sr" in page
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        if listening:  # iproute2 present: the socket is bound to loopback only
            assert {row.split()[3] for row in listening.splitlines()} == {f"127.0.0.1:{port}"}, listening
        client = Client(
            f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "dl"), analytics_enabled=False
        )
        long = write_tone(tmp_path / "long.wav", 8000, seconds=30.0)
        job = client.submit(
            [handle_file(long)], None, False, 0.9, "", 50, 1.4, 1.2, 0, True, None, api_name="/upsample"
        )
        while job.status().code.name != "PROGRESS":  # sampling has started
            assert time.monotonic() < deadline and not job.done(), job.status()
            time.sleep(0.2)
    finally:
        for wait in (30, 60):  # Ctrl+C, and a second one as a user would
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            proc.kill()  # never leave a server behind, even when the test fails
            raise AssertionError(f"saga-sr app did not stop after two Ctrl+C; stderr: {''.join(rest)[-2000:]}")
    time.sleep(0.5)  # the drain thread reads the last lines
    assert proc.returncode == 0 and "terminate called" not in "".join(rest), "".join(rest)[-2000:]
    assert not tmp.exists()
