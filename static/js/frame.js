// One webcam frame: the centre square of the video, as a JPEG of `size` pixels a side.
export function grab(video, size) {
  const side = Math.min(video.videoWidth, video.videoHeight);
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  canvas.getContext('2d').drawImage(
    video, (video.videoWidth - side) / 2, (video.videoHeight - side) / 2, side, side, 0, 0, size, size,
  );
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.85));
}
