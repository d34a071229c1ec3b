"""Load shapes of the park simulator: how fast each meter's carrier is used at a time.

Every function returns an average *rate per hour* in the carrier's canonical unit
(kWh/h = kW, m³/h, GJ/h, t/h), i.e. real usage after any multiplier. Magnitudes
scale with the enterprise's land area (mu) and its sector; shapes follow the park's
local clock (shifts, weekends), the sun at the park's latitude and longitude (PV)
and the heating season (gas and heat). Figures are plausible, not measured.
"""

from __future__ import annotations

import math
from datetime import datetime

from parkcarbon.registry import Carrier, Enterprise, Meter, MeterRole, Sector

# Average electric load per mu of land, kW (a refinery of 2,600 mu draws ~65 MW).
KW_PER_MU: dict[Sector, float] = {
    Sector.energy_chemical: 25.0,
    Sector.new_materials: 35.0,  # silicon and fibre furnaces
    Sector.equipment: 4.0,
    Sector.logistics: 2.0,
    Sector.data_centre: 60.0,
    Sector.agri_processing: 4.0,
    Sector.textiles: 6.0,
    Sector.building_materials: 10.0,
    Sector.services: 5.0,
    Sector.other: 3.0,
}
# Process natural gas per mu, m³/h (feedstock and fired heaters in energy_chemical).
GAS_M3H_PER_MU: dict[Sector, float] = {
    Sector.energy_chemical: 1.5,
    Sector.new_materials: 0.4,
    Sector.building_materials: 0.8,
    Sector.agri_processing: 0.3,
}
HEATING_GAS_M3H_PER_MU = 0.15  # space heating at full heating demand
PV_KWP_PER_MU = 0.8  # rooftop PV capacity per mu of land
PV_PERFORMANCE = 0.85  # inverter and temperature losses
WATER_M3H_PER_MU = 0.05
WATER_M3H_PER_MU_CHEMICAL = 0.3  # cooling-water make-up
STEAM_TH_PER_MU = 0.02
HEAT_GJH_PER_MU = 0.02
DIESEL_KGH_PER_MU = 0.4  # fleet refuelling, daytime
COAL_TH_PER_MU = 0.025  # rotary kiln
SUB_METER_SHARE = 0.65  # e.g. a data centre's IT load against its incomer
EXPORT_SHARE_OF_PV = 0.35


def solar_elevation_deg(t_utc: datetime, latitude: float, longitude: float) -> float:
    """Solar elevation (degrees) from declination, equation of time and hour angle."""
    doy = t_utc.timetuple().tm_yday
    hours = t_utc.hour + t_utc.minute / 60 + t_utc.second / 3600
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    b = 2 * math.pi * (doy - 81) / 364
    eot_minutes = 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)
    solar_hours = hours + longitude / 15 + eot_minutes / 60
    hour_angle = math.radians(15 * (solar_hours - 12))
    lat = math.radians(latitude)
    sin_el = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(
        hour_angle
    )
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))


def heating_factor(local: datetime) -> float:
    """0 outside the heating season, 1 in deep winter (Kuqa: ~15 Nov to ~15 Mar)."""
    doy = local.timetuple().tm_yday
    c = math.cos(2 * math.pi * (doy - 15) / 365)
    return max(0.0, (c - 0.5) / 0.5)


def _work_shape(sector: Sector, local: datetime) -> float:
    """Relative electric load (about 1 at full activity) by local hour and weekday."""
    h = local.hour + local.minute / 60
    wd = local.weekday()  # 0 Monday
    if sector in (Sector.energy_chemical, Sector.new_materials, Sector.textiles):
        return 0.95 + 0.03 * math.sin(2 * math.pi * (h - 9) / 24)  # continuous process
    if sector is Sector.data_centre:
        return 1.0 + 0.05 * math.sin(2 * math.pi * (h - 10) / 24)  # cooling in the afternoon
    if sector is Sector.building_materials:
        return 0.85 + (0.15 if 8 <= h < 20 else 0.0)  # kiln 24/7, mills in the day
    day = 8 <= h < 18
    if sector is Sector.equipment:
        level = 1.0 if day else 0.25
        return level * (1.0 if wd < 5 else 0.6 if wd == 5 else 0.3)
    if sector is Sector.logistics:
        return (1.0 if 7 <= h < 22 else 0.45) * (1.0 if wd < 5 else 0.8)
    if sector is Sector.agri_processing:
        return 1.0 if 8 <= h < 24 else 0.3
    if sector is Sector.services:
        return 1.0 if (9 <= h < 19 and wd < 5) else 0.3
    return 0.9 if day else 0.5


def pv_kw(capacity_kwp: float, t_utc: datetime, latitude: float, longitude: float,
          clearness: float = 1.0) -> float:
    """PV output: zero below the horizon, peaking near solar noon."""
    el = solar_elevation_deg(t_utc, latitude, longitude)
    if el <= 0:
        return 0.0
    return capacity_kwp * PV_PERFORMANCE * clearness * math.sin(math.radians(el)) ** 1.2


def rate_per_hour(meter: Meter, enterprise: Enterprise, t_utc: datetime, local: datetime,
                  latitude: float, longitude: float, clearness: float = 1.0) -> float:
    """Average usage rate of ``meter`` at ``t_utc`` (canonical unit per hour)."""
    mu, sector = enterprise.land_area_mu, enterprise.sector
    heat = heating_factor(local)
    night = 1.2 if (local.hour < 7 or local.hour >= 20) else 0.85
    carrier = meter.carrier
    if carrier is Carrier.electricity:
        if meter.role in (MeterRole.onsite_pv, MeterRole.export):
            out = pv_kw(mu * PV_KWP_PER_MU, t_utc, latitude, longitude, clearness)
            return out * (EXPORT_SHARE_OF_PV if meter.role is MeterRole.export else 1.0)
        load = mu * KW_PER_MU[sector] * _work_shape(sector, local)
        return load * (SUB_METER_SHARE if meter.role is MeterRole.sub_meter else 1.0)
    if carrier is Carrier.natural_gas:
        process = mu * GAS_M3H_PER_MU.get(sector, 0.02) * min(1.0, _work_shape(sector, local))
        return process + mu * HEATING_GAS_M3H_PER_MU * heat * night
    if carrier is Carrier.water:
        per_mu = WATER_M3H_PER_MU_CHEMICAL if sector is Sector.energy_chemical else (
            WATER_M3H_PER_MU)
        return mu * per_mu * (0.5 + 0.5 * min(1.0, _work_shape(sector, local)))
    if carrier is Carrier.steam:
        return mu * STEAM_TH_PER_MU * min(1.0, _work_shape(sector, local) + 0.3)
    if carrier is Carrier.heat:
        return mu * HEAT_GJH_PER_MU * heat * night
    if carrier is Carrier.diesel:
        return mu * DIESEL_KGH_PER_MU / 1000 * (1.0 if 6 <= local.hour < 22 else 0.0)
    if carrier is Carrier.coal:
        return mu * COAL_TH_PER_MU * (0.9 + 0.1 * _work_shape(sector, local))
    return 0.0
