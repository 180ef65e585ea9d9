// FuseCap hub: reference firmware for an ESP32 reading several BNO08x IMUs
// behind TCA9548A I2C multiplexers, streaming FuseCap hub protocol 1 over
// the serial port at 921600 baud.
//
// Protocol specification: docs/IMU_PROTOCOL.md (FuseCap repository).
// Receiver: plugins/imu/fusecap_protocol.py. The two must stay byte-identical.
//
// Libraries: "Adafruit BNO08x" (Library Manager), ESP32 Arduino core.
//
// Wiring: ESP32 SDA/SCL -> TCA9548A (0x70) -> one BNO08x per channel, each at
// its default address 0x4A. Up to 8 sensors per multiplexer; add muxes at
// 0x71.. and list their channels in SLOTS.
//
// The Adafruit library keeps a single, global sensor-hub state, so the sketch
// uses one driver object and points it at each sensor in turn by switching
// the multiplexer: every sensor is started once at boot (its reports enabled
// while its channel is selected), then polled in turn.

#include <Arduino.h>
#include <Wire.h>
#include <Adafruit_BNO08x.h>

// ---------------------------------------------------------------- settings --

#define SERIAL_BAUD 921600
#define I2C_CLOCK_HZ 400000
#define BNO08X_ADDR 0x4A
#define REPORT_INTERVAL_US 10000  // 100 Hz per sensor
#define SEND_ACCEL 1              // attach accelerometer readings (specific force)
#define SEND_GYRO 1               // attach calibrated gyroscope readings
#define USE_MAGNETOMETER 0        // 0: game rotation vector (no magnetometer), 1: rotation vector
#define MAX_EVENTS_PER_VISIT 6    // bound the time spent on one sensor per loop

struct Slot {
  uint8_t mux;      // TCA9548A address
  uint8_t channel;  // 0..7
};

// Sensor id n (in the packets) is SLOTS[n].
static const Slot SLOTS[] = {
  {0x70, 0}, {0x70, 1}, {0x70, 2}, {0x70, 3},
  {0x70, 4}, {0x70, 5}, {0x70, 6}, {0x70, 7},
};
static const uint8_t MUXES[] = {0x70};

static const size_t NUM_SLOTS = sizeof(SLOTS) / sizeof(SLOTS[0]);
static const size_t NUM_MUXES = sizeof(MUXES) / sizeof(MUXES[0]);

// ------------------------------------------------------- protocol 1 begin --
// Plain C++ (no Arduino calls) so the layout can be checked on a host compiler.

#define FUSECAP_SYNC1 0xFC
#define FUSECAP_SYNC2 0xA5
#define FUSECAP_FLAG_ACCEL 0x01
#define FUSECAP_FLAG_GYRO 0x02
#define FUSECAP_QUAT_SCALE 16384.0f  // Q14
#define FUSECAP_ACCEL_SCALE 256.0f   // counts per m/s^2
#define FUSECAP_GYRO_SCALE 512.0f    // counts per rad/s
#define FUSECAP_BASE_LEN 14          // sensor, flags, time, quaternion
#define FUSECAP_MAX_PACKET (3 + FUSECAP_BASE_LEN + 12 + 2)

// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR.
static uint16_t fusecap_crc16(const uint8_t *data, size_t n) {
  uint16_t crc = 0xFFFF;
  for (size_t i = 0; i < n; i++) {
    crc ^= (uint16_t)data[i] << 8;
    for (int b = 0; b < 8; b++) {
      crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
  }
  return crc;
}

static int16_t fusecap_i16(float value, float scale) {
  float v = value * scale;
  v = v < 0 ? v - 0.5f : v + 0.5f;  // round half away from zero
  if (v > 32767.0f) return 32767;
  if (v < -32768.0f) return -32768;
  return (int16_t)v;
}

static uint8_t *fusecap_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v & 0xFF);
  p[1] = (uint8_t)(v >> 8);
  return p + 2;
}

// Writes one packet to `out` (FUSECAP_MAX_PACKET bytes) and returns its
// length. q: w, x, y, z. accel (m/s^2) and gyro (rad/s) may be null.
static size_t fusecap_encode(uint8_t *out, uint8_t sensor, uint32_t t_us, const float q[4],
                             const float *accel, const float *gyro) {
  uint8_t flags = (accel ? FUSECAP_FLAG_ACCEL : 0) | (gyro ? FUSECAP_FLAG_GYRO : 0);
  uint8_t len = FUSECAP_BASE_LEN + (accel ? 6 : 0) + (gyro ? 6 : 0);
  uint8_t *p = out;
  *p++ = FUSECAP_SYNC1;
  *p++ = FUSECAP_SYNC2;
  *p++ = len;
  *p++ = sensor;
  *p++ = flags;
  p = fusecap_put16(p, (uint16_t)(t_us & 0xFFFF));
  p = fusecap_put16(p, (uint16_t)(t_us >> 16));
  for (int i = 0; i < 4; i++) p = fusecap_put16(p, (uint16_t)fusecap_i16(q[i], FUSECAP_QUAT_SCALE));
  if (accel) {
    for (int i = 0; i < 3; i++) p = fusecap_put16(p, (uint16_t)fusecap_i16(accel[i], FUSECAP_ACCEL_SCALE));
  }
  if (gyro) {
    for (int i = 0; i < 3; i++) p = fusecap_put16(p, (uint16_t)fusecap_i16(gyro[i], FUSECAP_GYRO_SCALE));
  }
  uint16_t crc = fusecap_crc16(out + 2, (size_t)(p - (out + 2)));  // LEN through the body
  p = fusecap_put16(p, crc);
  return (size_t)(p - out);
}

// --------------------------------------------------------- protocol 1 end --

struct SensorState {
  bool present;
  bool has_accel;
  bool has_gyro;
  float accel[3];
  float gyro[3];
};

static Adafruit_BNO08x bno(-1);  // no reset pin: the driver soft-resets each sensor
static sh2_SensorValue_t value;
static SensorState state[NUM_SLOTS];
static int selected = -1;

#if USE_MAGNETOMETER
#define ROTATION_REPORT SH2_ROTATION_VECTOR
#else
#define ROTATION_REPORT SH2_GAME_ROTATION_VECTOR
#endif

static void select_slot(size_t n) {
  if (selected == (int)n) return;
  for (size_t m = 0; m < NUM_MUXES; m++) {
    Wire.beginTransmission(MUXES[m]);
    Wire.write(MUXES[m] == SLOTS[n].mux ? (uint8_t)(1 << SLOTS[n].channel) : (uint8_t)0);
    Wire.endTransmission();
  }
  selected = (int)n;
}

static bool enable_reports() {
  bool ok = bno.enableReport(ROTATION_REPORT, REPORT_INTERVAL_US);
#if SEND_ACCEL
  ok = bno.enableReport(SH2_ACCELEROMETER, REPORT_INTERVAL_US) && ok;
#endif
#if SEND_GYRO
  ok = bno.enableReport(SH2_GYROSCOPE_CALIBRATED, REPORT_INTERVAL_US) && ok;
#endif
  return ok;
}

static void send_rotation(size_t n, float w, float x, float y, float z) {
  const float q[4] = {w, x, y, z};
  const SensorState &s = state[n];
  uint8_t packet[FUSECAP_MAX_PACKET];
  size_t len = fusecap_encode(packet, (uint8_t)n, (uint32_t)micros(), q,
                              (SEND_ACCEL && s.has_accel) ? s.accel : nullptr,
                              (SEND_GYRO && s.has_gyro) ? s.gyro : nullptr);
  Serial.write(packet, len);
}

static void visit(size_t n) {
  select_slot(n);
  SensorState &s = state[n];
  for (int i = 0; i < MAX_EVENTS_PER_VISIT && bno.getSensorEvent(&value); i++) {
    switch (value.sensorId) {
      case SH2_ACCELEROMETER:
        s.accel[0] = value.un.accelerometer.x;
        s.accel[1] = value.un.accelerometer.y;
        s.accel[2] = value.un.accelerometer.z;
        s.has_accel = true;
        break;
      case SH2_GYROSCOPE_CALIBRATED:
        s.gyro[0] = value.un.gyroscope.x;
        s.gyro[1] = value.un.gyroscope.y;
        s.gyro[2] = value.un.gyroscope.z;
        s.has_gyro = true;
        break;
#if USE_MAGNETOMETER
      case SH2_ROTATION_VECTOR:
        send_rotation(n, value.un.rotationVector.real, value.un.rotationVector.i,
                      value.un.rotationVector.j, value.un.rotationVector.k);
        break;
#else
      case SH2_GAME_ROTATION_VECTOR:
        send_rotation(n, value.un.gameRotationVector.real, value.un.gameRotationVector.i,
                      value.un.gameRotationVector.j, value.un.gameRotationVector.k);
        break;
#endif
      default:
        break;
    }
  }
  if (bno.wasReset()) {
    enable_reports();  // the selected sensor restarted and forgot its reports
  }
}

void setup() {
  Serial.setTxBufferSize(2048);  // a burst of packets must not stall the I2C polling
  Serial.begin(SERIAL_BAUD);
  Wire.begin();
  Wire.setClock(I2C_CLOCK_HZ);
  for (size_t n = 0; n < NUM_SLOTS; n++) {
    select_slot(n);
    state[n] = SensorState{};
    state[n].present = bno.begin_I2C(BNO08X_ADDR, &Wire) && enable_reports();
  }
}

void loop() {
  for (size_t n = 0; n < NUM_SLOTS; n++) {
    if (state[n].present) visit(n);
  }
}
