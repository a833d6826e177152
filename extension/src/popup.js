/* The popup: the current video's totals (the active tab's video, else the last one labelled) and the last
 * videos' totals, as the content scripts left them in chrome.storage.local. */

function videoIdOf(url) {
  try {
    const parsed = new URL(url);
    return parsed.pathname === "/watch" ? parsed.searchParams.get("v") : null;
  } catch {
    return null;
  }
}

function videoView(video) {
  const item = document.createElement("div");
  item.className = "video";
  item.dataset.videoId = video.videoId;
  const title = document.createElement("div");
  title.className = "video-title";
  title.textContent = `${video.title || video.videoId}: ${summary.total(video.counts)} comments`;
  item.append(title, ...panel.totals(video.counts));
  return item;
}

async function show() {
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  const history = (await chrome.storage.local.get("videos")).videos || [];
  const activeId = videoIdOf(tab?.url || "");
  const current = history.find((video) => video.videoId === activeId) || history[0];
  const currentSection = document.getElementById("current");
  if (current) currentSection.replaceChildren(videoView(current));
  else currentSection.textContent = "Open a YouTube video: its comments get labelled as they load.";
  document.getElementById("history").replaceChildren(
    ...history.map((video) => {
      const entry = document.createElement("li");
      entry.append(videoView(video));
      return entry;
    }),
  );
  const config = await settings.load();
  document.getElementById("predictor").textContent = `${config.predictorUrl} (${config.protocol}, ${config.modelName})`;
}

show();
